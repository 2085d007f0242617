"""`segdeploy export --fp16/--int8`: the reduced-precision graphs next to the FP32 one, checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.manifest import describe_onnx
from ..artifacts.metadata import stamp_metadata
from ..backends import open_backend
from ..data.calibration import CalibrationSet, check_calibration_options, check_compatible, load_calibration_set
from ..data.dataset import SegmentationSplit
from ..data.spec import load_dataset_spec
from ..errors import SegdeployError
from ..evaluate import evaluate
from ..libraries import library_versions
from ..meta import CHANNELS, ModelMeta
from ..precision_table import FP16, FP32, INT8, Precision
from ..tensorrt.profiles import input_profile
from .fp16 import convert_fp16, io_types
from .int8 import CALIBRATION_METHODS, QUANTIZED_OP_TYPES, qdq_violations
from .int8_cpu import CPU_FORMAT, cpu_quantizer, onnxruntime_kernels
from .int8_fp16 import write_int8_fp16
from .modelopt import NO_PYTHON, QUANTIZERS, ModelOpt, check_method
from .qdq_report import QdqReport, qdq_report
from .sensitivity import Int8Result, guarded_int8


@dataclass(frozen=True)
class PrecisionOptions:
    fp16: bool = False
    calibration: Path | None = None  # a calibration set folder: enables INT8
    method: str = "entropy"
    max_miou_drop: float | None = None  # default: the recipe's tolerance.int8.miou_delta (the table's INT8 gate)
    val_split: str = "val"
    always_rank: bool = False  # run the per-layer sensitivity analysis even when INT8 is within bounds
    quantizer: str = "ours"  # or "modelopt": NVIDIA ModelOpt's ONNX PTQ, run by `modelopt_python`
    modelopt_python: Path | None = None

    @classmethod
    def from_flags(
        cls,
        fp16: bool = False,
        int8: bool = False,
        calibration: Path | None = None,
        method: str = "entropy",
        max_miou_drop: float | None = None,
        val_split: str = "val",
        always_rank: bool = False,
        quantizer: str = "ours",
        modelopt_python: Path | None = None,
    ) -> PrecisionOptions:
        """From the command line's terms: --int8 with --calib, a known --calib-method and --quantizer."""
        check_calibration_options(int8, calibration)
        if method not in CALIBRATION_METHODS:
            raise SegdeployError(f"--calib-method '{method}': choose {', '.join(CALIBRATION_METHODS)}")
        if quantizer not in QUANTIZERS:
            raise SegdeployError(f"--quantizer '{quantizer}': choose {' or '.join(QUANTIZERS)}")
        if quantizer != "ours" and not int8:
            raise SegdeployError(f"--quantizer {quantizer} is only used with --int8")
        if quantizer == "modelopt":
            check_method(method)
            if modelopt_python is None:
                raise SegdeployError(NO_PYTHON)
        return cls(fp16, calibration, method, max_miou_drop, val_split, always_rank, quantizer, modelopt_python)


def _probe(fp32: Path, other: Path, meta: ModelMeta, kind: Precision) -> dict[str, Any]:
    """Same random frames through both graphs: finite outputs, the size of the difference, and whether
    it is within the precision's validation tolerance."""
    height, width = meta.recipe.input_size
    frames = np.random.default_rng(0).integers(0, 256, size=(1, height, width, CHANNELS), dtype=np.uint8)
    with open_backend(fp32) as first, open_backend(other) as second:
        reference, output = first.run(frames), second.run(frames)
    if output.dtype.kind == "f" and not np.isfinite(output).all():
        raise SegdeployError(f"{other}: non-finite outputs on a probe batch (float16 overflow?)")
    if output.ndim == 4:
        return {
            "probe_max_abs_diff": float(np.abs(output - reference).max()),
            "probe_within_tolerance": kind.validation.excess(reference, output) <= 0,
            "probe_label_agreement": float((output.argmax(1) == reference.argmax(1)).mean()),
        }
    return {"probe_label_agreement": float((output == reference).mean())}


def write_fp16(fp32: Path, meta: ModelMeta) -> tuple[Path, dict[str, Any]]:
    target = fp32.with_name(FP16.graph_file)
    kept = convert_fp16(fp32, target)
    stamp_metadata(target, meta, FP16.name)
    if io_types(target) != io_types(fp32):
        raise SegdeployError(f"{target}: inputs/outputs changed type in the float16 conversion")
    return target, {**describe_onnx(target, FP16), "kept_in_float32": kept, **_probe(fp32, target, meta, FP16)}


@dataclass(frozen=True)
class Int8Inputs:
    """What INT8 needs, read once per export: the calibration set and the split of its data set that
    the accuracy guard evaluates on."""

    calibration: CalibrationSet
    val: SegmentationSplit
    modelopt: ModelOpt | None = None  # --quantizer modelopt: the interpreter that runs it
    frames: list[np.ndarray] | None = None  # the calibration frames, read once for every INT8 graph


def check_precision_inputs(meta: ModelMeta, options: PrecisionOptions) -> Int8Inputs | None:
    """Read and check the calibration set and its data set before any export work is done (None: no INT8)."""
    if options.max_miou_drop is not None and not 0 <= options.max_miou_drop <= 1:
        raise SegdeployError(f"--max-miou-drop {options.max_miou_drop}: expected a fraction from 0 to 1")
    if options.calibration is None:
        return None
    modelopt = None
    if options.quantizer == "modelopt":
        check_method(options.method)
        modelopt = ModelOpt.find(options.modelopt_python)
    calibration = load_calibration_set(options.calibration)
    check_compatible(calibration, meta, input_channels=CHANNELS)
    spec = load_dataset_spec(calibration.dataset)
    if spec.num_classes != meta.num_classes:
        raise SegdeployError(f"{calibration.dataset}: {spec.num_classes} classes, the model has {meta.num_classes}")
    frames = list(calibration.frames())
    return Int8Inputs(calibration, SegmentationSplit(spec, options.val_split), modelopt, frames)


def opt_shape_report(path: Path, meta: ModelMeta) -> QdqReport:
    """The Q/DQ structural report of the graph at `path`, activations sized at the recipe's opt shape."""
    import onnx

    name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    return qdq_report(path, input_profile(meta, name).opt)


def quantizer_entry(modelopt: ModelOpt | None) -> dict[str, str]:
    """Which quantizer wrote the INT8 graph, and the version of the library that did the work."""
    if modelopt is None:
        return {"name": "ours", "library": "onnxruntime", "version": library_versions()["onnxruntime"]}
    python = str(modelopt.python)
    return {"name": "modelopt", "library": "nvidia-modelopt", "version": modelopt.version, "python": python}


def dequantized_op_types(path: Path) -> list[str]:
    """The op types that read a DequantizeLinear output: what the quantizer chose to quantize."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    dequantized = {out for n in nodes if n.op_type == "DequantizeLinear" for out in n.output}
    return sorted({n.op_type for n in nodes if n.op_type != "QuantizeLinear" and dequantized & set(n.input)})


def _int8_entry(
    path: Path, fp32: Path, meta: ModelMeta, modelopt: ModelOpt | None, log: Callable[[str], None]
) -> dict[str, Any]:
    """What every INT8 graph's manifest entry holds: description, quantizer, Q/DQ rule check, structure, probe."""
    report = opt_shape_report(path, meta)
    for line in report.lines():
        log(line)
    return {
        **describe_onnx(path, INT8),
        "quantizer": quantizer_entry(modelopt),
        "quantized_op_types": QUANTIZED_OP_TYPES if modelopt is None else dequantized_op_types(path),
        "qdq_rules_violations": qdq_violations(path),
        "qdq_structure": report.to_dict(),
        **_probe(fp32, path, meta, INT8),
    }


def write_int8_for_tensorrt(
    int8: Path,
    fp32: Path,
    meta: ModelMeta,
    result: Int8Result,
    inputs: Int8Inputs,
    log: Callable[[str], None],
) -> tuple[Path, dict[str, Any]]:
    """model.int8-fp16.onnx from the guarded model.int8.onnx, its val mIoU measured like the guard's."""
    target = fp32.with_name(INT8.strongly_typed_file)
    kept = write_int8_fp16(int8, target)
    stamp_metadata(target, meta, INT8.name)
    with open_backend(target) as backend:
        miou = evaluate(backend, inputs.val).miou()
    result.fp16_remainder_miou = miou
    log(f"int8 with FP16 remainder: val mIoU {miou:.4f} (drop {result.fp32_miou - miou:+.4f})")
    entry = {
        **_int8_entry(target, fp32, meta, inputs.modelopt, log),
        "float_remainder": FP16.name,
        "kept_in_float32": kept,
        "built_from": int8.name,
        "val_miou": miou,
        "miou_drop": result.fp32_miou - miou,
    }
    return target, entry


def write_int8_for_cpu(
    fp32: Path,
    meta: ModelMeta,
    options: PrecisionOptions,
    inputs: Int8Inputs,
    max_drop: float,
    log: Callable[[str], None],
) -> tuple[Path, dict[str, Any], Int8Result]:
    """model.int8-cpu.onnx (U8S8, ONNX Runtime's placement: quantize/int8_cpu.py) from the same calibration
    frames and method, under the same accuracy guard as model.int8.onnx."""
    target = fp32.with_name(INT8.cpu_file)
    log(f"int8 for ONNX Runtime on CPU: calibrating on {len(inputs.calibration.ids)} images ({options.method})")
    result = guarded_int8(
        fp32, target, meta, inputs.calibration, options.method, max_drop, inputs.val, log=lambda _: None,
        requantize=cpu_quantizer(options.method), frames=inputs.frames,
    )  # fmt: skip
    stamp_metadata(target, meta, INT8.name)
    log(
        f"int8 for CPU: val mIoU {result.int8_miou:.4f} (drop {result.drop:+.4f}), "
        f"{len(result.excluded)} nodes kept in float"
    )
    entry = {
        **describe_onnx(target, INT8),
        "quantizer": quantizer_entry(None),
        **CPU_FORMAT,
        "onnxruntime_kernels": onnxruntime_kernels(target),
        **_probe(fp32, target, meta, INT8),
        "calibration": {"images": len(inputs.calibration.ids), "method": options.method},
        "accuracy_guard": {**result.to_dict(), "val_split": options.val_split},
    }
    return target, entry, result


def write_int8(
    fp32: Path, meta: ModelMeta, options: PrecisionOptions, inputs: Int8Inputs, log: Callable[[str], None]
) -> tuple[dict[str, dict[str, Any]], Int8Result]:
    """model.int8.onnx (FP32 remainder, guarded), model.int8-fp16.onnx and model.int8-cpu.onnx beside `fp32`:
    entries by file name."""
    calibration, val = inputs.calibration, inputs.val
    max_drop = meta.recipe.tolerance.int8.miou_delta if options.max_miou_drop is None else options.max_miou_drop
    target = fp32.with_name(INT8.graph_file)
    modelopt = inputs.modelopt
    if modelopt is not None:
        log(f"int8: quantizing with NVIDIA ModelOpt {modelopt.version} ({modelopt.python})")
    result = guarded_int8(
        fp32, target, meta, calibration, options.method, max_drop, val, always_rank=options.always_rank, log=log,
        requantize=None if modelopt is None else modelopt.quantizer(options.method), frames=inputs.frames,
    )  # fmt: skip
    stamp_metadata(target, meta, INT8.name)
    entry = {
        **_int8_entry(target, fp32, meta, modelopt, log),
        "float_remainder": FP32.name,
        "calibration": {
            "set": str(calibration.directory),
            "images": len(calibration.ids),
            "method": options.method,
            "dataset": str(calibration.dataset),
        },
    }
    log(f"wrote {target}")
    twin, twin_entry = write_int8_for_tensorrt(target, fp32, meta, result, inputs, log)
    log(f"wrote {twin} (float remainder in FP16, for TensorRT >= 10)")
    cpu, cpu_entry, result.cpu = write_int8_for_cpu(fp32, meta, options, inputs, max_drop, log)
    log(f"wrote {cpu} (U8S8 Q/DQ for ONNX Runtime on CPU)")
    entry["accuracy_guard"] = {**result.to_dict(), "val_split": options.val_split}  # with the twins' mIoU
    return {target.name: entry, twin.name: twin_entry, cpu.name: cpu_entry}, result


def add_precisions(
    fp32: Path,
    meta: ModelMeta,
    options: PrecisionOptions,
    int8: Int8Inputs | None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, dict[str, Any]], Int8Result | None]:
    """Write the requested FP16 graph and, given `int8` (from check_precision_inputs), the INT8 one beside
    `fp32`; returns manifest entries by file name."""
    entries: dict[str, dict[str, Any]] = {}
    int8_result = None
    if options.fp16:
        target, entry = write_fp16(fp32, meta)
        entries[target.name] = entry
        log(f"wrote {target} (float32 kept for: {', '.join(entry['kept_in_float32']) or 'nothing'})")
    if int8 is not None:
        written, int8_result = write_int8(fp32, meta, options, int8, log)
        entries.update(written)
    return entries, int8_result
