"""What `segdeploy compare` measured: one score per model over the same images."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "segdeploy.compare/1"


@dataclass
class ModelScore:
    label: str
    artifact: str
    architecture: str
    encoder: str | None
    miou: float
    iou: dict[str, float]
    pixel_accuracy: float
    boundary: dict[str, Any]  # BoundaryErrors.to_dict() over all images
    per_image: dict[str, dict[str, Any]]  # the same per image id
    small_objects: dict[str, Any]  # SmallObjectRecall.to_dict() over all images
    labels: list[np.ndarray] = field(repr=False, default_factory=list)  # predictions, for the figure


@dataclass
class CompareReport:
    data: str
    dataset: str
    split: str
    ids: list[str]
    frames: list[np.ndarray] = field(repr=False)
    truths: list[np.ndarray] = field(repr=False)
    models: list[ModelScore]
    boundary_width: int = 3

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "data": self.data,
            "dataset": self.dataset,
            "split": self.split,
            "images": self.ids,
            "boundary_width_px": self.boundary_width,
            "models": [{k: v for k, v in vars(model).items() if k != "labels"} for model in self.models],
        }
