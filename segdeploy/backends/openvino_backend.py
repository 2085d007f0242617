"""OpenVINO backend (CPU): an ONNX model read by OpenVINO's ONNX frontend and compiled for its CPU plugin.

FP32 unless asked otherwise: OpenVINO's CPU plugin runs float ops in bf16 by default on CPUs with native
BF16 (OpenVINO 2026.4.1 reports INFERENCE_PRECISION_HINT bfloat16 on this repository's AVX512-BF16 EPYC),
which would make an "FP32" row silently BF16, so the hint is always set. BF16 (`--backend openvino:bf16`)
runs only where the CPU has it natively (AVX512-BF16 or AMX-BF16): elsewhere OpenVINO would fall back to
FP32 or emulate BF16 far slower than FP32 (docs.openvino.ai 2021.4, "Bfloat16 Inference"), so it is
refused in one line rather than run as FP32 under a BF16 label. Q/DQ graphs run on OpenVINO's own INT8
kernels (its low-precision transformations fuse each DQ -> Conv -> Q), their float remainder at the hint.
One pattern drifts there: a residual Add with no ReLU after it whose skip is a conv's quantized output
(MobileNetV3's linear bottlenecks): on LR-ASPP OpenVINO 2026.4.1 lands 0.05-0.07 mIoU below FP32 on
model.int8.onnx where ONNX Runtime, running the same graph, is within 0.002. model.int8-cpu.onnx feeds those
skips in float (quantize/int8_cpu.float_conv_skips) and is within 0.001 of ONNX Runtime on OpenVINO; opening
a graph with the pattern (the TensorRT-shaped ones) says so in one warning line (drifting_adds).
Imports openvino: open it through `open_backend`.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.metadata import META_KEY, PRECISION_KEY, read_onnx_metadata
from ..errors import SegdeployError, SegdeployWarning
from ..meta import AcceptedShapes
from ..precision_table import BF16, FP32, INT8
from .base import BackendBase, MemoryUse, Timings
from .options import BackendOptions

# segdeploy's precision names against OpenVINO's element types (ov.Type.get_type_name()).
OPENVINO_TYPES = {FP32.name: "f32", BF16.name: "bf16"}
NATIVE_BF16 = "BF16"  # in the CPU plugin's OPTIMIZATION_CAPABILITIES only where the CPU computes bf16 natively


def _first_line(exc: Exception) -> str:
    """OpenVINO's message without its source-file preamble ('Exception from src/...', 'Check ... failed')."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    unconverted = next((line for line in lines if "No conversion rule found for operations" in line), None)
    if unconverted is not None:
        return "OpenVINO has no conversion for op " + unconverted.split(":", 1)[1].strip()
    useful = [line for line in lines if not re.match(r"(Exception from|Check '.*' failed at) src/", line)]
    return (useful or lines or [type(exc).__name__])[0]


def _read(path: Path) -> Any:
    """The ONNX graph as an ov.Model, through the ONNX frontend alone (Core.read_model would also try the
    TensorFlow frontend on a damaged file, which prints its own parse errors)."""
    from openvino.frontend import FrontEndManager

    frontend = FrontEndManager().load_by_framework("onnx")
    try:
        return frontend.convert(frontend.load(str(path)))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with multi-line messages
        raise SegdeployError(f"{path}: OpenVINO cannot read it ({_first_line(exc)})") from None


def _metadata(model: Any) -> dict[str, str]:
    """The ONNX file's metadata_props, which the ONNX frontend keeps in the model's rt_info['framework']."""
    return {
        key: str(model.get_rt_info(["framework", key]).astype(str))
        for key in (META_KEY, PRECISION_KEY)
        if model.has_rt_info(["framework", key])
    }


def _constant(node: Any, depth: int = 2) -> bool:
    """Whether `node` computes from constants and shapes alone within `depth` ops (a Constant, a Reshape of one,
    a bias reshaped to its conv's rank through ShapeOf)."""
    if node.get_type_name() in ("Constant", "ShapeOf"):
        return True
    inputs = [node.input_value(i).get_node() for i in range(node.get_input_size())]
    return depth > 0 and bool(inputs) and all(_constant(source, depth - 1) for source in inputs)


def _quantizer(node: Any, depth: int = 4) -> tuple[Any, bool] | None:
    """The FakeQuantize behind `node` (itself, or the Convert -> Subtract -> Multiply that the ONNX frontend makes
    of a DequantizeLinear reading one), and whether another op reads that quantized tensor on the way; None
    when `node` is not a quantized tensor."""
    if node.get_type_name() == "FakeQuantize":
        return node, len(node.output(0).get_target_inputs()) > 1
    if depth == 0 or node.get_type_name() not in ("Convert", "Subtract", "Multiply"):
        return None
    for source in (node.input_value(i).get_node() for i in range(node.get_input_size())):
        found = None if _constant(source) else _quantizer(source, depth - 1)
        if found is not None:
            return found[0], found[1] or len(node.output(0).get_target_inputs()) > 1
    return None


def _conv_output(node: Any) -> bool:
    """Whether `node` is a convolution's output: the Convolution, or the Add of its bias constant, maybe cast
    (Convert: the float16 remainder's Casts)."""
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() == "Add":  # a bias: the ONNX frontend reshapes it to the conv's rank (up to 6 ops)
        sources = [node.input_value(i).get_node() for i in range(2)]
        if not any(_constant(source, depth=6) for source in sources):
            return False
        node = next(source for source in sources if not _constant(source, depth=6))
    return node.get_type_name() in ("Convolution", "GroupConvolution")


def _conv_skip(node: Any) -> bool:
    """Whether `node` is a conv's quantized output that other ops read too (a residual block's skip)."""
    found = _quantizer(node)
    return found is not None and found[1] and _conv_output(found[0].input_value(0).get_node())


def _rectified(add: Any) -> bool:
    """Whether a ReLU follows the sum: a Relu reads it, or the FakeQuantize that reads it clips it at 0 (its
    input_low; ONNX Runtime's CPU placement folds a Relu into the QuantizeLinear's range)."""
    for target in add.output(0).get_target_inputs():
        node = target.get_node()
        if node.get_type_name() == "Relu":
            return True
        if node.get_type_name() == "FakeQuantize":
            low = node.input_value(1).get_node()
            if low.get_type_name() == "Constant" and float(np.min(low.get_data())) >= 0:
                return True
    return False


def drifting_adds(model: Any) -> list[str]:
    """The Adds of the ov.Model (an ONNX graph as OpenVINO's frontend reads it) that its INT8 kernels run with a
    drift (module docstring): both inputs computed, a skip that is a conv's quantized output, no ReLU on the sum
    (ResNet's Add -> ReLU measured within the gate)."""
    found = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Add":
            continue
        inputs = [op.input_value(i).get_node() for i in range(2)]
        if any(_constant(node) for node in inputs) or _rectified(op):
            continue
        if any(_conv_skip(node) for node in inputs):
            found.append(op.get_friendly_name())
    return found


def native_bf16(core: Any) -> bool:
    return NATIVE_BF16 in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVINOBackend(BackendBase):
    name = "openvino"

    def __init__(
        self, path: Path, inference_precision: str | None = None, threads: int = 0, flush_denormal: bool = True
    ) -> None:
        import openvino as ov

        self.path = path
        wanted = inference_precision or FP32.name
        if wanted not in OPENVINO_TYPES:
            raise SegdeployError(f"{path}: OpenVINO runs float ops in {' or '.join(OPENVINO_TYPES)}, not '{wanted}'")
        core = ov.Core()
        if wanted == BF16.name and not native_bf16(core):
            raise SegdeployError(
                f"{path}: this CPU has no native BF16 (AVX512-BF16 or AMX-BF16), where OpenVINO would run FP32 or "
                "emulate BF16 slower than FP32; use --backend openvino (FP32)"
            )
        model = _read(path)
        self.meta, graph_precision = read_onnx_metadata(_metadata(model), path)
        dims = [d.get_length() if d.is_static else None for d in model.inputs[0].get_partial_shape()]
        self.shapes = AcceptedShapes.of_input(self.meta.io, dims, dims)
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": OPENVINO_TYPES[wanted],
            "PERFORMANCE_HINT": "LATENCY",  # one stream: all threads on one request, as the other backends run
            "CPU_DENORMALS_OPTIMIZATION": flush_denormal,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        # No model cache (CACHE_DIR) and no IR export: measured on U-Net (57 MB), reading the ONNX graph took
        # 0.5-2.7 s and compiling it 0.75-0.97 s, about what ONNX Runtime takes to open the same file
        # (0.7-2.5 s); a warm cache cut the compile to 0.2-0.26 s but a cold one cost 2.5-2.9 s, and a cache
        # is a folder written beside read-only artifacts (benchmarks/RESULTS.md, 2026-12-06).
        start = time.perf_counter()
        try:
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise SegdeployError(f"{path}: OpenVINO cannot compile it for the CPU ({_first_line(exc)})") from None
        self.compile_ms = (time.perf_counter() - start) * 1000
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if ran != OPENVINO_TYPES[wanted]:
            raise SegdeployError(f"{path}: OpenVINO compiled it with {ran} float ops, not the {wanted} asked for")
        self.inference_precision = wanted
        self.drifting_adds = drifting_adds(model) if graph_precision == INT8.name else []
        if self.drifting_adds:
            warnings.warn(
                f"{path}: OpenVINO's INT8 kernels drift on its {len(self.drifting_adds)} residual Adds with a "
                "quantized conv skip and no ReLU after them (LR-ASPP: 0.05-0.07 mIoU below FP32, where ONNX Runtime "
                f"is within 0.002); run {INT8.cpu_file} on OpenVINO, which feeds those skips in float (README, CPU "
                "backends)",
                SegdeployWarning,
                stacklevel=2,
            )
        # What bounds accuracy: a Q/DQ graph's INT8 ops, else bf16 when float ops ran so, else the graph's own.
        self.precision = graph_precision if graph_precision == INT8.name or wanted == FP32.name else wanted
        self.label = f"{path.name} [openvino{'' if wanted == FP32.name else ' ' + wanted}]"
        self.request = self.compiled.create_infer_request()
        self.output_dtype = np.int32 if self.meta.io.argmax else np.float32
        self.threads, self.flush_denormal, self.version = threads, flush_denormal, ov.__version__
        self.capabilities = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> OpenVINOBackend:
        return cls(path, options.inference_precision, options.threads, options.flush_denormal)

    @property
    def choice(self) -> str:
        return self.name if self.inference_precision == FP32.name else f"{self.name}:{self.inference_precision}"

    def settings(self) -> dict[str, Any]:
        return {
            "device": "CPU",
            "openvino": self.version,
            "inference_precision": self.inference_precision,
            "inference_threads": int(self.compiled.get_property("INFERENCE_NUM_THREADS")),
            "streams": int(self.compiled.get_property("NUM_STREAMS")),
            "denormal_as_zero": self.flush_denormal,
            "compile_ms": round(self.compile_ms, 1),
            "int8_drifting_adds": len(self.drifting_adds),
            "cpu_capabilities": self.capabilities,
        }

    def accepted_shapes(self) -> AcceptedShapes:
        """Fixed dimensions of the graph's input; any size for its dynamic ones."""
        return self.shapes

    def timings(self) -> Timings | None:
        return None  # on the CPU nothing splits copies from compute

    def memory(self) -> MemoryUse:
        """The weights (the file's size) on the host; no device memory."""
        return {"host_bytes": self.path.stat().st_size, "device_bytes": 0}

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.meta.feed(frames))

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        try:
            # share_inputs: the request reads the numpy array in place; the output is copied out of the
            # request's tensor, which the next inference overwrites.
            self.request.infer({0: feed}, share_inputs=True)
            output = self.request.get_output_tensor(0).data
        except Exception as exc:
            raise SegdeployError(
                f"{self.label}: OpenVINO failed on input {tuple(feed.shape)} ({_first_line(exc)})"
            ) from None
        return np.array(output, dtype=self.output_dtype)

    def _release(self) -> None:
        del self.request, self.compiled
