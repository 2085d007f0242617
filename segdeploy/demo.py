"""`segdeploy demo`: train briefly, export, check parity, on a procedural data set or the user's."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .data.spec import load_dataset_spec
from .data.synthetic import write_synthetic_dataset
from .errors import SegdeployError
from .export.pipeline import ExportResult, export_artifacts
from .parity import ParityOptions, ParityReport, run_parity
from .recipes import Recipe, load_recipe
from .train.loop import TrainResult, train


@dataclass(frozen=True)
class DemoResult:
    data: Path
    training: TrainResult
    export: ExportResult
    parity: ParityReport
    report: Path  # the parity report as JSON


def demo_recipe(epochs: int) -> Recipe:
    """The U-Net recipe shrunk to a few CPU minutes: 128-pixel crops, a short schedule."""
    recipe = load_recipe("unet")
    settings = dataclasses.replace(recipe.train, epochs=epochs, crop=(128, 128), repeats=4, lr=3e-3, class_weights=None)
    export = dataclasses.replace(recipe.export, probe_sizes=[(128, 160), (256, 256)])
    return recipe.replace(name="unet-demo", input_size=(128, 160), train=settings, export=export)


def run_demo(
    out: Path,
    data: Path | None = None,
    epochs: int = 8,
    force: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    if out.exists() and any(out.iterdir()) and not force:
        raise SegdeployError(f"{out}: already exists; pass --force to overwrite it or --out to choose another folder")
    if data is None:
        log(f"writing a procedural crop/weed data set to {out / 'data'}")
        data = write_synthetic_dataset(out / "data")
    spec = load_dataset_spec(data)
    recipe = demo_recipe(epochs)
    training = train(recipe, spec, out / "train", force=True, show_progress=show_progress, log=log)
    log(f"exporting {training.best} to ONNX")
    exported = export_artifacts(None, training.best, out / "export", force=True)
    log("checking parity of ONNX Runtime against PyTorch on the validation split")
    report = out / "parity.json"
    parity = run_parity(exported.out_dir, spec, "val", ParityOptions(json_out=report, force=True))
    return DemoResult(data, training, exported, parity, report)
