"""INT8 for x86 CPUs (ONNX Runtime, OpenVINO): model.int8-cpu.onnx, written beside the TensorRT Q/DQ graphs.

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
One change to that placement, for OpenVINO (float_conv_skips): a residual Add with no ReLU after it reads its
skip in float where the skip is a conv's output. On the quantized skip OpenVINO 2026.4.1's CPU plugin lands
LR-ASPP 0.05-0.07 mIoU below FP32, traced to one such Add; float skips bring it within 0.001 of ONNX Runtime,
which loses only the fused kernel of those convs (benchmarks/RESULTS.md, 2026-12-06, "float skips").
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import numpy_helper

from .int8 import FrameFeed, static_quantization
from .sensitivity import Requantize

# What the manifest records of this graph's form.
CPU_FORMAT = {
    "placement": "onnxruntime",
    "activations": "uint8 asymmetric, per tensor",
    "weights": "int8 symmetric, per output channel",
    "meant_for": "onnxruntime CPUExecutionProvider (x86), openvino CPU",
    "residual_skips": "float where a conv's output is the skip of an Add with no ReLU after it",
}


def quantize_for_cpu(prepared: Path, target: Path, feed: FrameFeed, method: str, exclude: list[str]) -> None:
    """quantize_static in ONNX Runtime's CPU form (U8S8 QDQ, its own placement); activation ranges are
    calibrated once per prepared graph and kept beside it for the guard's later attempts."""
    from onnxruntime.quantization import QuantType

    ranges = prepared.with_name(f"{prepared.stem}.cpu-ranges.json")
    form = {"activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8, "nodes_to_exclude": exclude}
    with static_quantization(prepared, target, feed, method, ranges, {}, **form) as tmp:
        model = onnx.load(str(tmp))
        if float_conv_skips(model):
            onnx.save(model, str(tmp))


def _rectified(add: onnx.NodeProto, readers: dict[str, list[onnx.NodeProto]], zero_points: dict[str, int]) -> bool:
    """Whether a ReLU follows the sum: a Relu reads it, or a uint8 QuantizeLinear with zero point 0, given or by
    default (a range that starts at 0: quantize_static folds a Relu into it)."""
    return any(
        node.op_type == "Relu"
        or (node.op_type == "QuantizeLinear" and (len(node.input) < 3 or zero_points.get(node.input[2]) == 0))
        for node in readers.get(add.output[0], [])
    )


def float_conv_skips(model: onnx.ModelProto) -> list[str]:
    """Rewire in place every Add with no ReLU after it that reads DQ(Q(x)), x a Conv's output that other nodes
    read through the same Q (the skip of a residual block, not the conv branch that only the Add reads), to read
    x itself; DequantizeLinear nodes left unread go. The Adds rewired, by name."""
    nodes = model.graph.node
    producers = {output: node for node in nodes for output in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    zero_points = {
        t.name: int(numpy_helper.to_array(t).flat[0])
        for t in model.graph.initializer
        if t.data_type == onnx.TensorProto.UINT8 and numpy_helper.to_array(t).size == 1
    }
    rewired, bypassed = [], []
    for add in [node for node in nodes if node.op_type == "Add"]:
        if _rectified(add, readers, zero_points) or not all(name in producers for name in add.input):
            continue
        for index, name in enumerate(add.input):
            dq = producers[name]
            q = producers.get(dq.input[0]) if dq.op_type == "DequantizeLinear" else None
            conv = producers.get(q.input[0]) if q is not None and q.op_type == "QuantizeLinear" else None
            shared = q is not None and len(readers[q.output[0]]) + len(readers[name]) > 2
            if conv is not None and conv.op_type == "Conv" and shared:
                add.input[index] = conv.output[0]
                rewired += [] if add.name in rewired else [add.name]
                bypassed.append(dq)
    still_read = {name for node in nodes for name in node.input} | {o.name for o in model.graph.output}
    for dq in bypassed:
        if dq.output[0] not in still_read and dq in nodes:
            nodes.remove(dq)
    return rewired


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
