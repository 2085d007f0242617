"""`segdeploy export`: recipe or checkpoint in, a folder with model.onnx, model.pt and manifest.json out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..artifacts.manifest import NAME, describe_file, describe_onnx, new_manifest, write_manifest
from ..artifacts.reference import FILE as REFERENCE
from ..errors import SegdeployError
from ..files import read_json, refuse_overwrite, require_folder, staged_folder
from ..meta import IOSpec, ModelMeta, default_colors
from ..models.checkpoint import load_model, save_checkpoint
from ..models.registry import build_model
from ..precision_table import FP16, FP32, INT8
from ..quantize.pipeline import PrecisionOptions, add_precisions, check_precision_inputs
from ..quantize.sensitivity import Int8Result
from ..recipes import Recipe, check_opset, choose_recipe
from .onnx_export import ProbeResult, export_onnx, probes_as_dicts
from .reference import write_export_reference


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    onnx: Path
    checkpoint: Path
    manifest: Path
    reference: Path  # reference.npz: frames and PyTorch's outputs, for parity without PyTorch
    probes: list[ProbeResult]
    trained: bool
    reduced: dict[str, Path] = field(default_factory=dict)  # the FP16 / INT8 graphs by file name
    int8: Int8Result | None = None

    def check_int8_gate(self) -> None:
        """Fail (exit code 1) when an INT8 graph (FP32 or FP16 remainder, CPU) stays above its mIoU-drop gate."""
        if self.int8 is not None and self.int8.worst_drop > self.int8.max_drop:
            kept = f"with {len(self.int8.excluded)} nodes in float"
            cpu = self.int8.cpu
            if self.int8.drop > self.int8.max_drop:
                where = f"{self.reduced[INT8.graph_file]}: INT8 mIoU drop {self.int8.drop:.4f}"
            elif cpu is not None and cpu.drop > cpu.max_drop:  # the TensorRT graphs are within; the CPU one not
                where = f"{self.reduced[INT8.cpu_file]}: INT8 mIoU drop {cpu.drop:.4f}"
                kept = f"with {len(cpu.excluded)} nodes in float"
            else:  # the guarded graph is within; its FP16-remainder twin is not
                where = (
                    f"{self.reduced[INT8.strongly_typed_file]}: INT8 mIoU drop {self.int8.worst_drop:.4f} with the "
                    f"float remainder in FP16 ({INT8.graph_file}: {self.int8.drop:.4f})"
                )
            raise SegdeployError(f"{where} stays above {self.int8.max_drop} {kept}", exit_code=1)


def export_artifacts(
    recipe: Recipe | str | None,
    checkpoint: Path | None,
    out_dir: Path | None = None,
    io: IOSpec = IOSpec(),
    force: bool = False,
    pretrained: bool = False,
    precision: PrecisionOptions = PrecisionOptions(),
    log: Callable[[str], None] = print,
    opset: int | None = None,
    *,
    model: str | None = None,
    encoder: str | None = None,
) -> ExportResult:
    """Export a checkpoint (or, without one, the recipe's freshly initialised model) into `out_dir`
    [exports/NAME], with FP16 and INT8 graphs beside the FP32 one when `precision` asks for them; `opset`
    replaces the recipe's. A recipe given by name (or `model`/`encoder`) is loaded as `choose_recipe` does;
    with a segdeploy checkpoint none is needed."""
    if not isinstance(recipe, Recipe):
        recipe = choose_recipe(recipe, model, encoder) if (recipe or model or checkpoint is None) else None
    if out_dir is None:
        out_dir = Path("exports") / (recipe.name if recipe else checkpoint.stem if checkpoint else "model")
    if opset is not None:
        check_opset(opset, "--opset")
    require_folder(out_dir)
    targets = [out_dir / FP32.graph_file, out_dir / "model.pt", out_dir / REFERENCE, out_dir / NAME]
    targets += [out_dir / FP16.graph_file] if precision.fp16 else []
    int8_files = (INT8.graph_file, INT8.strongly_typed_file, INT8.cpu_file)
    targets += [out_dir / name for name in int8_files] if precision.calibration else []
    refuse_overwrite(targets, force)
    if checkpoint is not None:
        network, meta, _ = load_model(checkpoint, recipe)
    elif recipe is not None:
        network = build_model(recipe.architecture, recipe.encoder, recipe.num_classes, pretrained=pretrained)
        names = [f"class{i}" for i in range(recipe.num_classes)]
        meta = ModelMeta(recipe, names, default_colors(recipe.num_classes))
    else:
        raise SegdeployError("export needs a recipe or a checkpoint")
    recipe = meta.recipe if opset is None else meta.recipe.replace(export=replace(meta.recipe.export, opset=opset))
    meta = ModelMeta(recipe, meta.class_names, meta.colors, io)
    int8_inputs = check_precision_inputs(meta, precision)  # fail before the export's work, not after
    again = functools.partial(refuse_overwrite, targets, force)  # checked again under the writer's lock
    with staged_folder(out_dir, replaced=_previous_export, log=log, refuse=again) as staging:
        onnx_path, reference_path = staging / FP32.graph_file, staging / "model.pt"
        probes = export_onnx(network, meta, onnx_path)
        save_checkpoint(reference_path, network, meta)
        manifest = new_manifest(meta, checkpoint)
        manifest["artifacts"]["model.pt"] = describe_file(reference_path, "pytorch")
        frames = int8_inputs.val if int8_inputs is not None else None
        manifest["artifacts"][REFERENCE] = write_export_reference(staging, network, meta, frames, REFERENCE)
        manifest["artifacts"][FP32.graph_file] = {
            **describe_onnx(onnx_path, FP32),
            "validation": probes_as_dicts(probes),
        }
        renamed = _renaming(log, staging, out_dir)
        entries, int8 = add_precisions(onnx_path, meta, precision, int8_inputs, log=renamed)
        manifest["artifacts"].update(entries)
        write_manifest(staging, manifest)
    reduced = {name: out_dir / name for name in entries}
    return ExportResult(
        out_dir,
        out_dir / FP32.graph_file,
        out_dir / "model.pt",
        out_dir / NAME,
        out_dir / REFERENCE,
        probes,
        checkpoint is not None,
        reduced,
        int8,
    )


def _previous_export(folder: Path) -> set[str]:
    """What an export replaces in `folder`: the manifest and every artifact (and engine sidecar) it lists."""
    if not (folder / NAME).is_file():
        return set()
    artifacts = read_json(folder / NAME).get("artifacts") or {}
    sidecars = {str(entry["sidecar"]) for entry in artifacts.values() if isinstance(entry, dict) and "sidecar" in entry}
    return {NAME, *map(str, artifacts), *sidecars}


def _renaming(log: Callable[[str], None], staging: Path, out_dir: Path) -> Callable[[str], None]:
    """`log`, with the staging folder's path shown as the folder the files will be in."""
    return lambda text: log(text.replace(str(staging), str(out_dir)))
