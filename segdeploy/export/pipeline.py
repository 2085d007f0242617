"""`segdeploy export`: recipe or checkpoint in, a folder with model.onnx, model.pt and manifest.json out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts.manifest import NAME, describe_file, describe_onnx, new_manifest, write_manifest
from ..errors import SegdeployError
from ..files import refuse_overwrite
from ..meta import IOSpec, ModelMeta, default_colors
from ..models.checkpoint import load_model, save_checkpoint
from ..models.registry import build_model
from ..precision.pipeline import PrecisionOptions, add_precisions, check_precision_inputs
from ..precision.sensitivity import Int8Result
from ..precisions import FP16, FP32, INT8
from ..recipes import Recipe
from .onnx_export import ProbeResult, export_onnx, probes_as_dicts


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    onnx: Path
    checkpoint: Path
    manifest: Path
    probes: list[ProbeResult]
    trained: bool
    reduced: dict[str, Path] = field(default_factory=dict)  # the FP16 / INT8 graphs by file name
    int8: Int8Result | None = None


def export_artifacts(
    recipe: Recipe | None,
    checkpoint: Path | None,
    out_dir: Path,
    io: IOSpec = IOSpec(),
    force: bool = False,
    pretrained: bool = False,
    precision: PrecisionOptions = PrecisionOptions(),
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export a checkpoint (or, without one, the recipe's freshly initialised model) into `out_dir`,
    with FP16 and INT8 graphs beside the FP32 one when `precision` asks for them."""
    onnx_path, reference_path, manifest_path = out_dir / FP32.graph_file, out_dir / "model.pt", out_dir / NAME
    targets = [onnx_path, reference_path, manifest_path]
    targets += [out_dir / FP16.graph_file] if precision.fp16 else []
    targets += [out_dir / INT8.graph_file] if precision.calibration is not None else []
    refuse_overwrite(targets, force)
    if checkpoint is not None:
        model, meta, _ = load_model(checkpoint, recipe)
    elif recipe is not None:
        model = build_model(recipe.architecture, recipe.encoder, recipe.num_classes, pretrained=pretrained)
        names = [f"class{i}" for i in range(recipe.num_classes)]
        meta = ModelMeta(recipe, names, default_colors(recipe.num_classes))
    else:
        raise SegdeployError("export needs a recipe or a checkpoint")
    meta = ModelMeta(meta.recipe, meta.class_names, meta.colors, io)
    int8_inputs = check_precision_inputs(meta, precision)  # fail before the export's work, not after
    out_dir.mkdir(parents=True, exist_ok=True)
    probes = export_onnx(model, meta, onnx_path)
    save_checkpoint(reference_path, model, meta)
    manifest = new_manifest(meta, checkpoint)
    manifest["artifacts"]["model.pt"] = describe_file(reference_path, "pytorch")
    manifest["artifacts"]["model.onnx"] = {**describe_onnx(onnx_path, FP32), "validation": probes_as_dicts(probes)}
    entries, int8 = add_precisions(onnx_path, meta, precision, int8_inputs, log=log)
    manifest["artifacts"].update(entries)
    write_manifest(out_dir, manifest)
    reduced = {name: out_dir / name for name in entries}
    return ExportResult(
        out_dir, onnx_path, reference_path, manifest_path, probes, checkpoint is not None, reduced, int8
    )
