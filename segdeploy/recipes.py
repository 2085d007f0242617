"""Recipes: one YAML per architecture holding model, input, export and tolerance settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .config import build, read_yaml
from .errors import SegdeployError
from .precision_table import BF16, FP16, FP32, INT8, LogitTolerance, PrecisionTolerance

MinOptMax = tuple[int, int, int]
Size = tuple[int, int]
OPSETS = (13, 21)  # Q/DQ per channel needs 13; 21 is the newest ONNX Runtime and the exporter both handle


@dataclass(frozen=True)
class ExportSettings:
    """ONNX export: opset, dynamic-axis ranges (min/opt/max, also TensorRT's profile) and probe sizes."""

    opset: int = 17
    batch: MinOptMax = (1, 1, 8)
    height: MinOptMax = (128, 256, 1024)
    width: MinOptMax = (128, 256, 1024)
    probe_sizes: list[Size] = field(default_factory=lambda: [(256, 256), (320, 384)])


@dataclass(frozen=True)
class Tolerance:
    """How far an exported artifact may drift from the PyTorch reference. The FP32 figures apply to
    FP32 artifacts (logits included); `fp16` and `int8` to the reduced-precision graphs, `bf16` to a
    backend running the FP32 graph in bfloat16 (OpenVINO's BF16 hint). `int8.miou_delta` is also the
    INT8 accuracy guard's default --max-miou-drop."""

    logits_max_abs: float = FP32.validation.atol
    miou_delta: float = FP32.gate.miou_delta
    pixel_agreement: float = FP32.gate.pixel_agreement
    fp16: PrecisionTolerance = FP16.gate
    int8: PrecisionTolerance = INT8.gate
    bf16: PrecisionTolerance = BF16.gate

    def for_precision(self, name: str) -> PrecisionTolerance:
        """The gate for artifacts of precision `name` (FP32's for the PyTorch variants)."""
        if name in (FP16.name, INT8.name, BF16.name):
            gate: PrecisionTolerance = getattr(self, name)
            return gate
        return PrecisionTolerance(self.miou_delta, self.pixel_agreement)

    def logits(self) -> LogitTolerance:
        """FP32 logits against the reference: the recipe's absolute bound, the table's relative one."""
        return LogitTolerance(self.logits_max_abs, FP32.validation.rtol)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    batch_size: int = 8
    crop: Size = (256, 256)
    repeats: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: Literal["poly", "cosine"] = "poly"
    loss: Literal["ce", "dice", "focal", "ce+dice"] = "ce+dice"
    class_weights: list[float] | None = None
    scale: tuple[float, float] = (0.5, 1.5)
    hflip: bool = True
    vflip: bool = False
    color_jitter: float = 0.2
    seed: int = 0
    # BatchNorm momentum while training; None keeps the model's. torchvision's MobileNetV3 uses 0.01,
    # tuned for long ImageNet runs: in a short run from scratch its running statistics lag so far behind
    # that eval-mode predictions collapse to one class. 0.1 is PyTorch's default.
    bn_momentum: float | None = None
    amp: bool = True  # mixed precision: bf16 (or fp16 + GradScaler) on CUDA, bf16 on CPUs with native bf16
    channels_last: bool = True  # NHWC activations and weights: faster convolutions on tensor cores and oneDNN
    sync_batchnorm: bool = True  # with several processes, BatchNorm statistics over the global batch


@dataclass(frozen=True)
class Recipe:
    name: str
    architecture: str
    encoder: str | None = None
    num_classes: int = 3
    input_size: Size = (256, 256)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    export: ExportSettings = field(default_factory=ExportSettings)
    tolerance: Tolerance = field(default_factory=Tolerance)
    train: TrainSettings = field(default_factory=TrainSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def recipe_from_dict(raw: dict[str, Any], where: str) -> Recipe:
    recipe = build(Recipe, raw, where)
    _check(recipe, where)
    return recipe


def check_opset(opset: int, where: str) -> None:
    low, high = OPSETS
    if not low <= opset <= high:
        raise SegdeployError(f"{where}: opset {opset} is not supported; choose {low} to {high}")


def _check_training(train: TrainSettings, where: str) -> None:
    for key in ("epochs", "batch_size", "repeats"):
        if getattr(train, key) < 1:
            raise SegdeployError(f"{where}: train.{key} {getattr(train, key)}: must be at least 1")
    if min(train.crop) < 1:
        raise SegdeployError(f"{where}: train.crop {list(train.crop)}: height and width must be at least 1")
    if not train.lr > 0:
        raise SegdeployError(f"{where}: train.lr {train.lr}: must be above 0")
    if not 0 < train.scale[0] <= train.scale[1]:
        raise SegdeployError(f"{where}: train.scale {list(train.scale)}: expected 0 < low <= high")


def _check(recipe: Recipe, where: str) -> None:
    check_opset(recipe.export.opset, where)
    _check_training(recipe.train, where)
    if min(recipe.input_size) < 1:
        raise SegdeployError(f"{where}: input_size {list(recipe.input_size)}: height and width must be at least 1")
    if not all(s > 0 for s in recipe.std):
        raise SegdeployError(f"{where}: std {list(recipe.std)}: every value must be above 0")
    for axis in ("batch", "height", "width"):
        low, opt, high = getattr(recipe.export, axis)
        if not 1 <= low <= opt <= high:
            raise SegdeployError(f"{where}: export.{axis} must satisfy 1 <= min <= opt <= max, got {low, opt, high}")
    for h, w in [recipe.input_size, *recipe.export.probe_sizes]:
        lo_h, _, hi_h = recipe.export.height
        lo_w, _, hi_w = recipe.export.width
        if not (lo_h <= h <= hi_h and lo_w <= w <= hi_w):
            raise SegdeployError(f"{where}: size {h}x{w} is outside the export height/width ranges")
    if recipe.num_classes < 2:
        raise SegdeployError(f"{where}: num_classes must be at least 2")
    weights = recipe.train.class_weights
    if weights is not None and len(weights) != recipe.num_classes:
        raise SegdeployError(f"{where}: train.class_weights has {len(weights)} values for {recipe.num_classes} classes")
    if weights is not None and not (all(0 <= w < float("inf") for w in weights) and sum(weights) > 0):
        raise SegdeployError(f"{where}: train.class_weights {list(weights)}: need finite values >= 0, one above 0")


def recipe_dirs() -> list[Path]:
    """Where recipe names are looked up: ./recipes, the source checkout's recipes, the installed copy."""
    package = Path(__file__).resolve().parent
    return [Path.cwd() / "recipes", package.parent / "recipes", package / "_recipes"]


def available_recipes() -> list[str]:
    names = {p.stem for d in recipe_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def resolve_recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SegdeployError(f"{path}: recipe file not found")
        return path
    for directory in recipe_dirs():
        candidate = directory / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    raise SegdeployError(f"unknown recipe '{name_or_path}' (known: {', '.join(available_recipes())})")


def load_recipe(name_or_path: str) -> Recipe:
    path = resolve_recipe_path(name_or_path)
    raw = read_yaml(path)
    raw.setdefault("name", path.stem)
    return recipe_from_dict(raw, str(path))


def choose_recipe(name: str | None, model: str | None = None, encoder: str | None = None) -> Recipe:
    """Recipe `name` [unet], with its architecture replaced by `model` (package.module:factory) and its
    encoder by `encoder` where given; with `model` and no `name` the recipe takes the model's name."""
    recipe = load_recipe(name or "unet")
    if model is not None:
        recipe = recipe.replace(architecture=model, encoder=None, name=recipe.name if name else model)
    if encoder is not None:
        recipe = recipe.replace(encoder=encoder)
    return recipe
