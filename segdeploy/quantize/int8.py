"""INT8 as explicit Q/DQ in the graph, in the form TensorRT builds strongly typed and fuses.

What is quantized (TensorRT's explicit-quantization placement, as NVIDIA ModelOpt's ONNX PTQ writes it):
- The inputs of weighted ops, Conv/ConvTranspose/Gemm/MatMul: data and weight; TensorRT fuses DQ -> Conv
  (-> Q of the next layer's input) into one INT8 kernel. Their outputs carry no Q/DQ (ONNX Runtime's
  OpTypesToExcludeOutputQuantization): output Q/DQ rounds twice and can block fusion.
- Residual Adds: one input only, the residual (skip) branch; the other, a conv's output, stays float so
  TensorRT fuses the Add into that conv (qdq_placement, after quantization). No Q/DQ on the Add's output.
- Quantizable ops TensorRT runs INT8 between a DQ and a Q (its fusions of DQ -> op -> Q): the inputs of
  Mul (squeeze-excite scaling), GlobalAveragePool and AveragePool, outputs again left to their readers.
  Inside x * HardSigmoid(x), HardSwish as ONNX Runtime's pre-processing decomposes it, x stays float:
  no Q/DQ between a conv and its activation (qdq_placement).
- Concat: where all its inputs are quantized they share one scale, the largest; where some are float, all
  are (qdq_placement). A Q/DQ after MaxPool, Concat or a nearest Resize (ops that commute with it) is
  repeated on their inputs at its scale, so TensorRT runs them INT8 and the convs before them write INT8.
  Interpolating Resize and the logits stay float: the graph output is FP32 before argmax.
- Symmetric int8 (zero point 0), activations per tensor, opset >= 13. Weights per output channel: axis 0
  for Conv, Gemm's by transB (0 when B is transposed, else 1), 1 for MatMul. ConvTranspose weights per
  tensor on every TensorRT version: its kernels take per-channel scales only on axis 0, the input channels,
  and not the output channels on axis 1 that BatchNorm folding needs (NVIDIA/TensorRT issues #2380 and
  #1694, where NVIDIA says "We don't support per-output-channel quant for ConvTranspose").
- Biases stay float: TensorRT folds them into its INT8 kernels itself and does not take the int32
  Q/DQ'd biases ONNX Runtime would otherwise write.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..artifacts.manifest import opset_of
from ..data.calibration import CalibrationSet
from ..errors import SegdeployError
from ..files import atomic_path
from ..libraries import quiet_logs
from ..meta import ModelMeta
from .qdq_placement import place_for_tensorrt
from .qdq_report import WEIGHTED_OP_TYPES, structure_problems

QUANTIZED_OP_TYPES = ["Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "GlobalAveragePool", "AveragePool"]
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# ONNX Runtime's calibrators keep every intermediate output of every frame until ranges are computed: 32
# frames of a U-Net at 480x640 took 14.6 GB and were killed on a 23 GiB machine. With CalibStridedMinMax
# (which, despite the name, drives every calibrator) it collects this many frames at a time and merges
# the ranges or histograms between passes.
CALIBRATION_STRIDE = 4


def weight_axis(node: onnx.NodeProto) -> int | None:
    """The per-channel axis of a weighted op's weight (its output channels); None: per tensor."""
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return {"Conv": 0, "MatMul": 1}.get(node.op_type)


class FrameFeed:
    """An onnxruntime CalibrationDataReader over a calibration set's frames (read once, or `frames` already
    read) fed as the set records its preprocessing; rewinding replays them, set_range serves a slice of them."""

    def __init__(
        self, calibration: CalibrationSet, meta: ModelMeta, input_name: str, frames: list[np.ndarray] | None = None
    ) -> None:
        self.calibration, self.meta, self.input_name = calibration, meta, input_name
        self.frames = list(calibration.frames()) if frames is None else frames
        self._served, self._end = 0, len(self.frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._served >= self._end:
            return None
        frames = self.frames[self._served]
        self._served += 1
        return {self.input_name: self.calibration.feed(frames, self.meta.io)}

    def rewind(self) -> None:
        self._served, self._end = 0, len(self.frames)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._served, self._end = start_index, min(end_index, len(self.frames))

    def stride(self) -> int:
        """Frames per calibration pass: the largest divisor of the count up to CALIBRATION_STRIDE."""
        return max(d for d in range(1, CALIBRATION_STRIDE + 1) if len(self.frames) % d == 0)


def calibration_reader(feed: FrameFeed) -> object:
    """`feed` as an onnxruntime CalibrationDataReader."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return feed.get_next()

        def rewind(self) -> None:
            feed.rewind()

        def set_range(self, start_index: int, end_index: int) -> None:
            feed.set_range(start_index, end_index)

        def __len__(self) -> int:
            return len(feed.frames)

    return Reader()


def calibration_method(method: str) -> object:
    """onnxruntime's CalibrationMethod for a --calib-method name."""
    from onnxruntime.quantization import CalibrationMethod

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise SegdeployError(f"calibration method '{method}': choose {', '.join(CALIBRATION_METHODS)}")
    return methods[method]


def prepare(source: Path, target: Path) -> None:
    """Shape inference and graph optimisation (BatchNorm folding) ahead of quantization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
    except Exception as exc:
        raise SegdeployError(f"{source}: quantization pre-processing failed ({str(exc).splitlines()[0]})") from None


@contextlib.contextmanager
def static_quantization(
    prepared: Path, target: Path, feed: FrameFeed, method: str, cache: Path, extra: dict[str, Any], **form: Any
) -> Iterator[Path]:
    """ONNX Runtime's quantize_static of `prepared` into a temporary beside `target`, yielded for a post-pass
    and renamed onto `target` when the block ends: QDQ format, per-channel weights, no reduced range, this
    module's calibration (percentile, strided passes, ranges kept in `cache`); `extra` adds extra_options,
    `form` the rest (types, which nodes)."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    options = {"CalibPercentile": 99.999, "CalibStridedMinMax": feed.stride(), **extra}
    with atomic_path(target) as tmp, quiet_logs("root"), contextlib.redirect_stdout(io.StringIO()):
        quantize_static(
            str(prepared),
            str(tmp),
            calibration_data_reader=calibration_reader(feed),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            calibrate_method=calibration_method(method),
            extra_options=options,
            calibration_cache_path=str(cache),
            **form,
        )
        yield tmp


def quantize(
    prepared: Path,
    target: Path,
    feed: FrameFeed,
    method: str,
    cache: Path,
    exclude: list[str] | None = None,
    only: list[str] | None = None,
) -> None:
    """quantize_static in TensorRT's Q/DQ form; activation ranges come from `cache` once it exists."""
    from onnxruntime.quantization import QuantType

    graph = onnx.load(str(prepared), load_external_data=False).graph
    per_tensor = {n.input[1] for n in graph.node if n.op_type == "ConvTranspose"}
    options = {
        "QuantizeBias": False,
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        "OpTypesToExcludeOutputQuantization": QUANTIZED_OP_TYPES,
        "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},  # Conv's and Gemm's (by transB) are ORT's defaults
        "TensorQuantOverrides": {name: [{"symmetric": True}] for name in per_tensor},
    }
    form = {"activation_type": QuantType.QInt8, "weight_type": QuantType.QInt8}
    with static_quantization(
        prepared, target, feed, method, cache, options, op_types_to_quantize=QUANTIZED_OP_TYPES,
        nodes_to_exclude=exclude or [], nodes_to_quantize=only, **form,
    ) as tmp:  # fmt: skip
        model = onnx.load(str(tmp))
        place_for_tensorrt(model)
        onnx.save(model, str(tmp))


def qdq_violations(path: Path) -> list[str]:
    """Every way the graph breaks the Q/DQ rules TensorRT needs (rule_violations), or fuses badly
    (qdq_report.structure_problems); empty when it is fine."""
    model = onnx.load(str(path))
    return rule_violations(model) + structure_problems(model)


def rule_violations(model: onnx.ModelProto) -> list[str]:
    """The Q/DQ rules TensorRT refuses or misbuilds without: opset, constant symmetric int8 zero points and
    scales, per-tensor activations, per-channel weights on the right axis, float16 scales from opset 19."""
    problems = []
    opset = opset_of(model)
    if opset < 13:
        problems.append(f"opset {opset} < 13")
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    qdq_nodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq_nodes:
        problems.append("no QuantizeLinear/DequantizeLinear nodes")
    for node in qdq_nodes:
        if len(node.input) < 3 or node.input[2] not in initializers:
            problems.append(f"{node.name}: no constant zero point")
            continue
        zero_point, scale = initializers[node.input[2]], initializers.get(node.input[1])
        if zero_point.dtype != np.int8:
            problems.append(f"{node.name}: zero point is {zero_point.dtype}, not int8")
        if np.any(zero_point != 0):
            problems.append(f"{node.name}: zero point not 0 (asymmetric)")
        if scale is None:
            problems.append(f"{node.name}: scale is not a constant")
            continue
        weight = node.op_type == "DequantizeLinear" and node.input[0] in initializers
        if weight:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            for consumer in consumers.get(node.output[0], []):
                if consumer.input[1:2] != [node.output[0]] or consumer.op_type not in WEIGHTED_OP_TYPES:
                    continue
                expected = weight_axis(consumer)
                if expected is None and scale.size != 1:
                    problems.append(f"{node.name}: weight of {consumer.op_type} not per-tensor")
                elif expected is not None:
                    channels = initializers[node.input[0]].shape[expected]
                    if scale.size != channels or axis != expected:
                        problems.append(f"{node.name}: weight of {consumer.op_type} not per-channel on axis {expected}")
        elif scale.size != 1:
            problems.append(f"{node.name}: activation scale is not per-tensor")
        if scale.dtype == np.float16 and opset < 19:
            problems.append(
                f"{node.name}: float16 scale at opset {opset} (QuantizeLinear/DequantizeLinear take it from 19)"
            )
    return problems


def quantized_node_names(path: Path) -> list[str]:
    """Nodes of the prepared graph that INT8 quantization would touch (candidates for sensitivity)."""
    model = onnx.load(str(path))
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OP_TYPES]


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="segdeploy-int8-")
