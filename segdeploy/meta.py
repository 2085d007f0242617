"""What every consumer of a model needs besides weights: recipe, classes, colours, I/O conventions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SegdeployError
from .recipes import ExportSettings, Recipe, recipe_from_dict

if TYPE_CHECKING:
    from .schema import ModelFacts

Color = tuple[int, int, int]
Range = tuple[int, int]  # inclusive (min, max); min == max: a fixed dimension

STRIDE = 32  # every architecture's output stride: frame height and width are multiples of it
CHANNELS = 3  # frames are RGB
UNBOUNDED = 2**31 - 1  # the upper end of a range without one


class ShapeError(SegdeployError):
    """Frames a backend cannot run: wrong dtype or layout, or a size outside its accepted shapes."""


@dataclass(frozen=True)
class AcceptedShapes:
    """The uint8 frame batches (N, H, W, CHANNELS) a backend runs: per dimension an inclusive range, with
    height and width multiples of STRIDE."""

    batch: Range
    height: Range
    width: Range

    @classmethod
    def any_size(cls) -> AcceptedShapes:
        """Any batch, any height and width that are multiples of STRIDE: a model that is not exported."""
        return cls((1, UNBOUNDED), (STRIDE, UNBOUNDED), (STRIDE, UNBOUNDED))

    @classmethod
    def of_export(cls, export: ExportSettings) -> AcceptedShapes:
        """The ranges a model was exported for (its recipe's dynamic axes)."""
        return cls(*((low, high) for low, _, high in (export.batch, export.height, export.width)))

    @classmethod
    def of_input(cls, io: IOSpec, low: Sequence[int | None], high: Sequence[int | None]) -> AcceptedShapes:
        """From an input tensor's min and max shapes (NHWC uint8 or NCHW float, as `io` says); a dimension
        that is None (dynamic) takes any size."""
        axes = (0, 1, 2) if io.fold_preprocess else (0, 2, 3)
        default = cls.any_size()
        ranges = []
        for axis, fallback in zip(axes, (default.batch, default.height, default.width)):
            least, most = low[axis], high[axis]
            ranges.append(fallback if least is None or most is None else (least, most))
        return cls(*ranges)

    def problems(self, batch: int, height: int, width: int) -> list[str]:
        """Why a batch x height x width input is not accepted; empty when it is."""
        sizes = (("batch", batch, self.batch), ("height", height, self.height), ("width", width, self.width))
        problems = [
            f"{axis} {value} is not {low}"
            if low == high
            else f"{axis} {value} below {low}"
            if high == UNBOUNDED
            else f"{axis} {value} outside {low}..{high}"
            for axis, value, (low, high) in sizes
            if not low <= value <= high
        ]
        if height % STRIDE or width % STRIDE:
            problems.append(f"height and width must be multiples of {STRIDE}")
        return problems

    def check_size(self, batch: int, height: int, width: int, where: str) -> None:
        """Refuse, in one line naming `where`, a batch x height x width input that is not accepted."""
        problems = self.problems(batch, height, width)
        if problems:
            raise ShapeError(f"{where}: shape {batch}x{height}x{width} is not accepted ({'; '.join(problems)})")

    def check(self, frames: np.ndarray, where: str) -> None:
        """Refuse, in one line naming `where`, frames that are not uint8 (N, H, W, 3) of an accepted size."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != CHANNELS:
            raise ShapeError(f"{where}: expected uint8 frames (N, H, W, {CHANNELS}), got {frames.dtype} {frames.shape}")
        batch, height, width = (int(d) for d in frames.shape[:3])
        self.check_size(batch, height, width, where)


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

    def _output_kind(self, argmax: bool) -> str:
        return "an int32 class map (N, H, W)" if argmax else f"float32 logits (N, {self.num_classes}, H, W)"

    def check_outputs(self, shapes: Sequence[Sequence[int | None]], where: str) -> None:
        """Refuse, in one line, a graph whose outputs (static dimensions as ints, dynamic ones None) are
        not what its metadata claims: one output, full-resolution NCHW logits or a class map."""
        expected = self._output_kind(self.io.argmax)
        if len(shapes) != 1:
            raise SegdeployError(f"{where}: the graph has {len(shapes)} outputs; segdeploy models have one, {expected}")
        shape = list(shapes[0])
        if len(shape) != (3 if self.io.argmax else 4):
            raise SegdeployError(f"{where}: output of shape {_dims(shape)}; expected {expected}")
        if self.io.argmax:
            return
        channels, n = shape[1], self.num_classes
        nhwc = shape[3] == n and channels != n
        if nhwc or channels not in (None, n):
            layout = "NHWC logits" if nhwc else f"{channels} channels"
            raise SegdeployError(f"{where}: output of shape {_dims(shape)} ({layout}); expected {expected}")

    def check_output(self, output: np.ndarray, frames: np.ndarray, where: str, argmax: bool) -> None:
        """Refuse, in one line, an output that is not full resolution for the uint8 (N, H, W, 3) `frames`
        (class maps when `argmax`, else logits): a stride-4 head or NHWC logits whose graph signature
        did not show it."""
        batch, height, width = (int(d) for d in frames.shape[:3])
        expected = (batch, height, width) if argmax else (batch, self.num_classes, height, width)
        if tuple(output.shape) != expected:
            raise SegdeployError(
                f"{where}: output of shape {tuple(output.shape)} for a {batch}x{height}x{width} input; expected "
                f"{self._output_kind(argmax)} at the input's resolution, {expected}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "class_names": list(self.class_names),
            "colors": [list(c) for c in self.colors],
            "io": {"fold_preprocess": self.io.fold_preprocess, "argmax": self.io.argmax},
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> ModelMeta:
        """Model facts read back from JSON (`where`: the file and key they come from), checked against
        their schema: a missing or malformed field is one line naming it."""
        from .schema import ModelFacts, parse

        return cls.from_facts(parse(ModelFacts, raw, where), where)

    @classmethod
    def from_facts(cls, facts: ModelFacts, where: str) -> ModelMeta:
        """From model facts already checked against their schema."""
        return cls(
            recipe=recipe_from_dict(facts.recipe, where),
            class_names=list(facts.class_names),
            colors=[(c[0], c[1], c[2]) for c in facts.colors],
            io=IOSpec(facts.io.fold_preprocess, facts.io.argmax),
        )


def _dims(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def normalize(frames: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """uint8 NHWC frames to the float32 NCHW input of a graph without folded preprocessing."""
    scaled = frames.astype(np.float32) / np.float32(255.0)
    scaled = (scaled - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


OTHER_COLOR = (255, 255, 255)  # labels outside the class list, e.g. the ignore index of a ground truth
NODATA = 255  # the class index written where an image had no data (tiled class maps); models have fewer classes


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
