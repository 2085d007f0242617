"""What every consumer of a model needs besides weights: recipe, classes, colours, I/O conventions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .recipes import Recipe, recipe_from_dict

Color = tuple[int, int, int]


@dataclass(frozen=True)
class IOSpec:
    """How a deployed graph is fed and what it returns.

    fold_preprocess: input is uint8 NHWC camera frames, normalisation happens inside the graph;
    otherwise input is float32 NCHW, already normalised. argmax: output is int32 class maps (N,H,W);
    otherwise float32 logits (N,C,H,W).
    """

    fold_preprocess: bool = False
    argmax: bool = False


@dataclass(frozen=True)
class ModelMeta:
    recipe: Recipe
    class_names: list[str]
    colors: list[Color]
    io: IOSpec = field(default_factory=IOSpec)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def feed(self, frames: np.ndarray) -> np.ndarray:
        """The graph's input for uint8 NHWC frames: the frames themselves when preprocessing is folded
        into the graph, else normalised float32 NCHW."""
        recipe = self.recipe
        return frames if self.io.fold_preprocess else normalize(frames, recipe.mean, recipe.std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "class_names": list(self.class_names),
            "colors": [list(c) for c in self.colors],
            "io": {"fold_preprocess": self.io.fold_preprocess, "argmax": self.io.argmax},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> ModelMeta:
        return cls(
            recipe=recipe_from_dict(raw["recipe"], where),
            class_names=[str(n) for n in raw["class_names"]],
            colors=[(int(c[0]), int(c[1]), int(c[2])) for c in raw["colors"]],
            io=IOSpec(**raw.get("io", {})),
        )


def normalize(frames: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 NHWC frames to the float32 NCHW input of a graph without folded preprocessing."""
    scaled = frames.astype(np.float32) / np.float32(255.0)
    scaled = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


OTHER_COLOR = (255, 255, 255)  # labels outside the class list, e.g. the ignore index of a ground truth


def colorize(labels: np.ndarray, colors: list[Color]) -> np.ndarray:
    """uint8 RGB (H, W, 3) from a class map, each class in its colour."""
    table = np.tile(np.asarray(OTHER_COLOR, np.uint8), (256, 1))
    table[: len(colors)] = np.asarray(colors, np.uint8)
    colored: np.ndarray = table[labels.astype(np.uint8)]
    return colored


def default_colors(num_classes: int) -> list[Color]:
    """Pascal VOC's colour map: distinct colours for any number of classes."""
    colors = []
    for index in range(num_classes):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    return colors
