"""Training from command-line options: the recipe, its settings changed by what the user typed, and the run."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import parse_size
from ..data.spec import load_dataset_spec
from ..errors import SegdeployError
from ..files import exclusive
from ..recipes import TrainSettings, choose_recipe
from .distributed import joined
from .loop import TrainResult, train

LOSSES = ("ce", "dice", "focal", "ce+dice")


@dataclass(frozen=True)
class TrainOptions:
    """Changes to a recipe's training settings as typed (crop 'HxW', class weights 'a,b,c'); None keeps it."""

    epochs: int | None = None
    batch: int | None = None
    crop: str | None = None
    lr: float | None = None
    loss: str | None = None
    class_weights: str | None = None
    amp: bool | None = None

    def apply(self, settings: TrainSettings) -> TrainSettings:
        """`settings` with these changes, checked; one-line errors name the option."""
        changes: dict[str, Any] = {
            "epochs": self.epochs,
            "batch_size": self.batch,
            "lr": self.lr,
            "loss": self.loss,
            "amp": self.amp,
            "crop": parse_size(self.crop) if self.crop else None,
            "class_weights": _weights(self.class_weights) if self.class_weights is not None else None,
        }
        changed = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
        if changed.loss not in LOSSES:
            raise SegdeployError(f"--loss '{changed.loss}': choose {', '.join(LOSSES[:-1])} or {LOSSES[-1]}")
        return changed


def _weights(text: str) -> list[float]:
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise SegdeployError(f"--class-weights '{text}': expected numbers separated by commas") from None
    if not (all(0 <= w < float("inf") for w in weights) and sum(weights) > 0):
        raise SegdeployError(f"--class-weights '{text}': need finite values >= 0, at least one above 0")
    return weights


def train_recipe(
    recipe: str | None,
    data: Path,
    out: Path | None = None,
    options: TrainOptions = TrainOptions(),
    *,
    model: str | None = None,
    encoder: str | None = None,
    device: str = "auto",
    resume: Path | None = None,
    pretrained: bool = False,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult | None:
    """Train recipe `recipe` (or `model`/`encoder`) with `options` on the data set YAML `data`, into `out`
    [runs/RECIPE, or --resume's folder]. Under torchrun every process calls this; rank 0 alone logs and
    gets the result, the others get None."""
    with joined(device) as world:
        chosen = choose_recipe(recipe, model, encoder)
        out_dir = out or (resume.parent if resume else Path("runs") / chosen.name)
        with exclusive(out_dir, log) if world.is_main else contextlib.nullcontext():  # one training per folder
            result = train(
                chosen.replace(train=options.apply(chosen.train)),
                load_dataset_spec(data),
                out_dir,
                resume=resume,
                force=force,
                pretrained=pretrained,
                log=log,
                world=world,
            )
        return result if world.is_main else None
