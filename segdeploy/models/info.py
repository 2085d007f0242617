"""Facts about a model: parameter count and GFLOPs at a given input size; the facts of every architecture."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..meta import CHANNELS


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module, height: int, width: int) -> float:
    """Forward-pass GFLOPs (multiply and add counted separately) for one image, counted on the meta device."""
    device = next(model.parameters()).device
    sample = torch.zeros(1, CHANNELS, height, width, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(sample)
    return counter.get_total_flops() / 1e9


@dataclass(frozen=True)
class ModelFacts:
    name: str
    encoder: str | None  # None: the architecture has a fixed backbone
    parameters: int
    input_size: tuple[int, int]
    gflops: float
    encoder_stride: int
    head_stride: int
    summary: str


def model_facts() -> list[ModelFacts]:
    """Every architecture, with its recipe's encoder, classes and input size when it has a recipe (else
    256x256 and 3 classes), built on the meta device."""
    from ..recipes import available_recipes, load_recipe
    from .registry import ARCHITECTURES, build_model

    known = set(available_recipes())
    facts = []
    for name, entry in ARCHITECTURES.items():
        recipe = load_recipe(name) if name in known else None
        encoder = recipe.encoder if recipe else None
        height, width = recipe.input_size if recipe else (256, 256)
        with torch.device("meta"):
            model = build_model(name, encoder, recipe.num_classes if recipe else 3)
        facts.append(
            ModelFacts(
                name,
                encoder,
                parameter_count(model),
                (height, width),
                gflops(model, height, width),
                entry.encoder_stride,
                entry.head_stride,
                entry.summary,
            )
        )
    return facts
