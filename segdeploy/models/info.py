"""Facts about a model: parameter count and GFLOPs at a given input size."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module, height: int, width: int) -> float:
    """Forward-pass GFLOPs (multiply and add counted separately) for one image, counted on the meta device."""
    device = next(model.parameters()).device
    sample = torch.zeros(1, 3, height, width, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(sample)
    return counter.get_total_flops() / 1e9
