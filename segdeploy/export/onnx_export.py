"""PyTorch to ONNX with dynamic batch/height/width, checked numerically against PyTorch before it lands."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..artifacts.manifest import opset_of
from ..artifacts.metadata import onnx_metadata
from ..backends import Backend, open_backend
from ..errors import SegdeployError
from ..files import atomic_path
from ..libraries import quiet_logs
from ..meta import CHANNELS, ModelMeta, normalize
from ..models.adapter import LogitsAdapter
from ..models.deploy_module import DeployModule
from ..precision_table import FP32, LogitTolerance


@dataclass(frozen=True)
class ProbeResult:
    """One validation probe: ONNX Runtime against PyTorch on a random batch of frames."""

    batch: int
    height: int
    width: int
    max_abs_diff: float  # logits; for argmax graphs, over confident pixels only (see compare)
    label_mismatches: int


def io_names(meta: ModelMeta) -> tuple[str, str]:
    return ("frames" if meta.io.fold_preprocess else "input"), ("labels" if meta.io.argmax else "logits")


def _dynamic_axes(meta: ModelMeta) -> dict[int, str]:
    return {0: "batch", 1: "height", 2: "width"} if meta.io.fold_preprocess else {0: "batch", 2: "height", 3: "width"}


def _torch_export(module: DeployModule, meta: ModelMeta, path: Path) -> None:
    """torch.export-based exporter for opset >= 18. Below that it cannot be trusted (its down-conversion
    writes ReduceMean nodes that are invalid at opset 17), so opset <= 17, what TensorRT 8.5 on JetPack 5
    parses, goes through the TorchScript exporter, deprecated but still shipped."""
    height, width = meta.recipe.input_size
    frames = torch.zeros(2, height, width, 3, dtype=torch.uint8)  # batch 2: torch.export specialises size 1
    sample = frames if meta.io.fold_preprocess else torch.from_numpy(normalize(frames.numpy(), (0, 0, 0), (1, 1, 1)))
    input_name, output_name = io_names(meta)
    opset = meta.recipe.export.opset
    axes = _dynamic_axes(meta)
    output_axes = {0: "batch", 1: "height", 2: "width"} if meta.io.argmax else {0: "batch", 2: "height", 3: "width"}
    if opset >= 18:
        options: dict[str, Any] = {
            "dynamo": True,
            "external_data": False,
            "dynamic_shapes": ({axis: torch.export.Dim.AUTO for axis in axes},),
        }
    else:
        options = {"dynamo": False, "dynamic_axes": {input_name: axes, output_name: output_axes}}
    with warnings.catch_warnings(), quiet_logs("torch.onnx", "onnxscript"), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            opset_version=opset,
            verbose=False,
            **options,
        )
    produced = opset_of(onnx.load(str(path), load_external_data=False))
    if produced != opset:
        raise SegdeployError(f"{path}: exporter wrote opset {produced}, the recipe asks for {opset}")


def _finish_graph(path: Path, meta: ModelMeta) -> None:
    """Name the dynamic axes batch/height/width and embed the segdeploy metadata."""
    model = onnx.load(str(path))
    axes = _dynamic_axes(meta)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, name in axes.items():
            if axis < len(dims) and not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name
    del model.metadata_props[:]
    for key, text in onnx_metadata(meta, FP32.name).items():
        model.metadata_props.add(key=key, value=text)
    onnx.save(model, str(path))


def compare(reference_logits: np.ndarray, output: np.ndarray, tolerance: LogitTolerance) -> tuple[float, int, bool]:
    """(max |logit difference|, label mismatches, within the tolerance), for logits or class-map outputs. A
    mismatch counts only where the reference's top-2 logit margin exceeds twice the image's bound
    (elsewhere it is a near-tie)."""
    bound = tolerance.allowed(reference_logits)[:, 0]
    top2 = np.sort(reference_logits, axis=1)[:, -2:]
    confident = (top2[:, 1] - top2[:, 0]) > 2 * bound
    labels = output.argmax(1) if output.ndim == 4 else output
    mismatches = int(((labels != reference_logits.argmax(1)) & confident).sum())
    if output.ndim != 4:
        return 0.0, mismatches, not mismatches
    diff = float(np.abs(output - reference_logits).max())
    return diff, mismatches, not mismatches and tolerance.excess(reference_logits, output) <= 0


def validate(
    path: Path, module: DeployModule, meta: ModelMeta, seed: int = 0, shown: Path | None = None
) -> list[ProbeResult]:
    """Full onnx.checker pass, an ONNX Runtime load, and a numeric comparison at each probe size;
    errors name `shown` (the artifact `path` becomes) [path]."""
    shown = shown or path
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise SegdeployError(f"{shown}: onnx.checker rejected the export ({str(exc).splitlines()[0]})") from None
    with open_backend(path, kind="onnx") as backend:
        return _probe_sizes(backend, shown, module, meta, seed)


def _probe_sizes(backend: Backend, shown: Path, module: DeployModule, meta: ModelMeta, seed: int) -> list[ProbeResult]:
    """The ONNX model against PyTorch at each of the recipe's probe sizes; errors name `shown`."""
    reference = DeployModule(module.model, meta.recipe.mean, meta.recipe.std, type(meta.io)(True, False)).eval()
    rng = np.random.default_rng(seed)
    tolerance = meta.recipe.tolerance.logits()
    results = []
    for index, (height, width) in enumerate(meta.recipe.export.probe_sizes):
        batch = 1 + index % 2
        frames = rng.integers(0, 256, size=(batch, height, width, CHANNELS), dtype=np.uint8)
        with torch.inference_mode():
            ref = reference(torch.from_numpy(frames)).numpy()
        try:
            out = backend.run(frames)
        except Exception as exc:
            raise SegdeployError(
                f"{shown}: ONNX Runtime failed at {batch}x{height}x{width} ({str(exc).splitlines()[0]}); "
                "the export may have fixed a dynamic axis"
            ) from None
        for name, values in (("PyTorch", ref), ("ONNX Runtime", out)):
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise SegdeployError(
                    f"{shown}: {name} gives NaN or infinite logits at {height}x{width} "
                    "(a zero in the recipe's std, or diverged weights?)",
                    exit_code=1,
                )
        diff, mismatches, within = compare(ref, out, tolerance)
        results.append(ProbeResult(batch, height, width, diff, mismatches))
        if not within:
            raise SegdeployError(
                f"{shown}: ONNX Runtime differs from PyTorch at {height}x{width}: max |logit difference| "
                f"{diff:.2e} (tolerance {tolerance} per image), {mismatches} confident label mismatches",
                exit_code=1,
            )
    return results


def export_onnx(model: LogitsAdapter, meta: ModelMeta, target: Path) -> list[ProbeResult]:
    """Export `model` as `target`, written under a temporary name and renamed once validated."""
    module = DeployModule(model.cpu().eval(), meta.recipe.mean, meta.recipe.std, meta.io).eval()
    with atomic_path(target) as tmp:
        try:
            _torch_export(module, meta, tmp)
        except Exception as exc:
            raise SegdeployError(
                f"{target}: torch.onnx.export failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        _finish_graph(tmp, meta)
        probes = validate(tmp, module, meta, shown=target)
    return probes


def probes_as_dicts(probes: list[ProbeResult]) -> list[dict[str, float | int]]:
    return [asdict(p) for p in probes]
