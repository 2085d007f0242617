"""Optimisation-profile shapes from a recipe's min/opt/max ranges, and the check of a shape against them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..meta import CHANNELS, ModelMeta

Shape = tuple[int, ...]


@dataclass(frozen=True)
class InputProfile:
    """min/opt/max shapes of one input tensor (NCHW float, or NHWC uint8 with folded preprocessing)."""

    name: str
    min: Shape
    opt: Shape
    max: Shape

    def problems(self, shape: Shape) -> list[str]:
        """Why `shape` is outside the profile; empty when it fits."""
        if len(shape) != len(self.min):
            return [f"{len(shape)} dimensions, the engine takes {len(self.min)}"]
        return [
            f"dimension {axis} is {size}, outside {low}..{high}"
            for axis, (size, low, high) in enumerate(zip(shape, self.min, self.max))
            if not low <= size <= high
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def _layout(meta: ModelMeta, batch: int, height: int, width: int) -> Shape:
    return (batch, height, width, CHANNELS) if meta.io.fold_preprocess else (batch, CHANNELS, height, width)


def input_profile(meta: ModelMeta, name: str) -> InputProfile:
    """The recipe's export ranges as a profile: dynamic batch, height and width."""
    export = meta.recipe.export
    shapes = [_layout(meta, export.batch[i], export.height[i], export.width[i]) for i in range(3)]
    return InputProfile(name, *shapes)


def calibration_profile(meta: ModelMeta, name: str, batch: int, size: tuple[int, int]) -> InputProfile:
    """A fixed-shape profile for the implicit calibrator: TensorRT calibrates at the profile's opt shape."""
    shape = _layout(meta, batch, *size)
    return InputProfile(name, shape, shape, shape)
