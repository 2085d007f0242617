"""INT8 for ONNX Runtime on x86 CPUs: model.int8-cpu.onnx, written beside the TensorRT Q/DQ graphs.

ONNX Runtime runs a Q/DQ graph fast only where its graph transformers fuse DQ -> op -> Q into a quantized
kernel (QLinearConv, QLinearAdd, ...). The TensorRT placement (int8.py) leaves conv outputs and biases
float, so ONNX Runtime 1.32 fuses none of a U-Net's 31 convs: they run in float between extra Q/DQ nodes,
slower than the FP32 graph (benchmarks/RESULTS.md, 2026-12-06). This graph takes ONNX Runtime's own QDQ
placement instead (quantize_static's defaults: every op type it has a kernel for, outputs quantized,
biases int32), with uint8 asymmetric activations and int8 weights (U8S8), as quantize_static's guidance
for x86 CPUs asks (ONNX Runtime 1.32, "Choosing parameters for CPU inference": QDQ format, QUInt8
activations, QInt8 weights; reduce_range=False with VNNI). On that graph every conv fuses into QLinearConv.
Weights stay per output channel (accuracy; per tensor was within the spread of the timing).
reduce_range is off: x86 CPUs without VNNI may saturate U8S8 products (VPMADDUBSW, ONNX Runtime's
quantization guide, "When and why do I need to try U8U8?"); the accuracy gate is measured on the CPU
that exports. TensorRT builds never read this graph (tensorrt/versions.graphs_to_build).
Residual Adds of two linear branches (no ReLU after them: MobileNetV3's bottlenecks, LR-ASPP's head) stay in
float: OpenVINO 2026.4.1's INT8 kernels run such a quantized Add with a drift that grows block by block (on
LR-ASPP, 97.1% class-map agreement with FP32 and a 0.05 mIoU drop against ONNX Runtime's 99.7%; with those
Adds in float, 99.7% on both), while ResNet's Add -> ReLU is unaffected (benchmarks/RESULTS.md, 2026-12-06).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import onnx

from ..files import atomic_path
from ..libraries import quiet_logs
from .int8 import FrameFeed, calibration_method, calibration_reader
from .sensitivity import Requantize

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# What the manifest records of this graph's form.
CPU_FORMAT = {
    "placement": "onnxruntime",
    "activations": "uint8 asymmetric, per tensor",
    "weights": "int8 symmetric, per output channel",
    "meant_for": "onnxruntime CPUExecutionProvider (x86)",
}


def float_residual_inputs(model: onnx.ModelProto) -> int:
    """Feed each linear residual Add of the quantized `model` (it sums two computed tensors and feeds no
    Relu) its inputs in float: DequantizeLinear(QuantizeLinear(x)) -> x, then drop the Q/DQ nodes nothing
    reads any more. The inputs rewired: the pattern OpenVINO's INT8 kernels mishandle (module docstring)."""
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    relu_fed = {name for node in graph.node if node.op_type == "Relu" for name in node.input}
    rewired = 0
    for add in graph.node:
        if add.op_type != "Add" or add.output[0] in relu_fed:
            continue
        sources = [producers.get(name) for name in add.input]
        quantized = [
            dq is not None and dq.op_type == "DequantizeLinear" and getattr(producers.get(dq.input[0]), "op_type", "")
            == "QuantizeLinear" for dq in sources
        ]  # fmt: skip
        # A constant term (bias-like Add) is no residual; both inputs must be computed activations.
        if any(source is None or (source.op_type == "DequantizeLinear" and not ok)
               for source, ok in zip(sources, quantized, strict=True)):  # fmt: skip
            continue
        for index, (dq, ok) in enumerate(zip(sources, quantized, strict=True)):
            if ok and dq is not None:
                add.input[index] = producers[dq.input[0]].input[0]
                rewired += 1
    while True:  # Q/DQ nodes left without a reader (a DQ first, then the Q that fed only it)
        read = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        dead = [n for n in graph.node if n.op_type in QDQ_OPS and not any(o in read for o in n.output)]
        if not dead:
            return rewired
        for node in dead:
            graph.node.remove(node)


def quantize_for_cpu(prepared: Path, target: Path, feed: FrameFeed, method: str, exclude: list[str]) -> None:
    """quantize_static in ONNX Runtime's CPU form (U8S8 QDQ, its own placement); activation ranges are
    calibrated once per prepared graph and kept beside it for the guard's later attempts; linear residual
    Adds read float inputs (float_residual_inputs)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    options = {"CalibPercentile": 99.999, "CalibStridedMinMax": feed.stride()}
    with atomic_path(target) as tmp, quiet_logs("root"), contextlib.redirect_stdout(io.StringIO()):
        quantize_static(
            str(prepared),
            str(tmp),
            calibration_data_reader=calibration_reader(feed),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=calibration_method(method),
            extra_options=options,
            calibration_cache_path=str(prepared.with_name(f"{prepared.stem}.cpu-ranges.json")),
        )
        model = onnx.load(str(tmp))
        if float_residual_inputs(model):
            onnx.save(model, str(tmp))


def cpu_quantizer(method: str) -> Requantize:
    """quantize_for_cpu with `method`, in the form the accuracy guard (sensitivity.guarded_int8) calls."""

    def requantize(prepared: Path, target: Path, feed: FrameFeed, exclude: list[str]) -> None:
        quantize_for_cpu(prepared, target, feed, method, exclude)

    return requantize


def onnxruntime_kernels(path: Path) -> dict[str, int]:
    """How ONNX Runtime's CPU provider runs the graph at `path` once its graph optimisations (the
    backend's, with its disabled optimizers) have fused what they can: quantized convs (QLinearConv),
    convs left in float, and the QuantizeLinear/DequantizeLinear nodes still run on their own."""
    import tempfile

    import onnx
    import onnxruntime as ort

    from ..backends.onnxruntime_backend import DISABLED_OPTIMIZERS

    with tempfile.TemporaryDirectory(prefix="segdeploy-ort-") as scratch:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.optimized_model_filepath = str(Path(scratch) / "optimized.onnx")
        options.log_severity_level = 3  # the NCHWc serialisation warning: the file is only counted here
        ort.InferenceSession(str(path), options, ["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS)
        nodes = onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node
    ops = [n.op_type for n in nodes]
    return {
        "QLinearConv": ops.count("QLinearConv"),
        "float_conv": sum(op in ("Conv", "FusedConv") for op in ops),
        "QuantizeLinear": ops.count("QuantizeLinear"),
        "DequantizeLinear": ops.count("DequantizeLinear"),
    }
