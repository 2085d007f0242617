"""A linear-bottleneck block as quantize_static's CPU placement writes it, for the float-skip rewrite
(quantize/int8_cpu.float_conv_skips) and the OpenVINO drift check that must agree with it
(backends/openvino_backend.drifting_adds):

    x -> Q/DQ -> conv1 -> Q/DQ -> d1 -> conv2 -> Q/DQ -> d2 ┐
                                  d1 ───────────────────── Add -> `after`

d1 (the skip) is read by conv2 and the Add; d2 (the conv branch) by the Add alone. With skip='conv, own DQ'
conv2 and the Add read d1's Q through a DequantizeLinear each, as quantize_static also writes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

SHAPE = [1, 4, 8, 8]
AFTERS = ("none", "relu", "quantized at 0", "quantized, zero point by default")


def linear_bottleneck(path: Path, after: str = "none", skip: str = "conv", branch: str = "conv") -> Path:
    """Write the block: `after` the Add one of AFTERS; `skip` 'conv' (conv1's output), 'conv, own DQ', 'input'
    (x's own Q/DQ: not a conv) or 'float' (conv1's float output, the rewrite's result); `branch` 'conv' (d2) or
    'constant' (the Add adds a constant: no residual block)."""
    h, tensor = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(0)

    def weights(name: str) -> list[onnx.TensorProto]:
        w = rng.integers(-127, 128, size=(4, 4, 1, 1), dtype=np.int8)
        return [
            onnx.numpy_helper.from_array(w, f"{name}_w"),
            onnx.numpy_helper.from_array(np.full(4, 0.01, np.float32), f"{name}_ws"),
            onnx.numpy_helper.from_array(np.zeros(4, np.int8), f"{name}_wz"),
            # int32 bias at input scale x weight scale, as quantize_static writes it (QLinearConv fuses only so)
            onnx.numpy_helper.from_array(rng.integers(-2000, 2000, size=4).astype(np.int32), f"{name}_b"),
            onnx.numpy_helper.from_array(np.full(4, 0.05 * 0.01, np.float32), f"{name}_bs"),
            onnx.numpy_helper.from_array(np.zeros(4, np.int32), f"{name}_bz"),
        ]

    inits = [
        *weights("c1"),
        *weights("c2"),
        h.make_tensor("s", tensor.FLOAT, [], [0.05]),
        h.make_tensor("z128", tensor.UINT8, [], [128]),
        h.make_tensor("z0", tensor.UINT8, [], [0]),
        h.make_tensor("k", tensor.FLOAT, [1, 4, 1, 1], [0.1, 0.2, 0.3, 0.4]),
    ]

    def qdq(source: str, name: str, zero: str | None = "z128") -> list[onnx.NodeProto]:
        zeros = [zero] if zero else []  # none: uint8, zero point 0 (the operator's default)
        return [
            h.make_node("QuantizeLinear", [source, "s", *zeros], [f"{name}_q"], name=f"{name}_Q"),
            h.make_node("DequantizeLinear", [f"{name}_q", "s", *zeros], [name], name=f"{name}_DQ"),
        ]

    def conv(source: str, name: str) -> list[onnx.NodeProto]:
        return [
            h.make_node("DequantizeLinear", [f"{name}_w", f"{name}_ws", f"{name}_wz"], [f"{name}_wd"], axis=0),
            h.make_node("DequantizeLinear", [f"{name}_b", f"{name}_bs", f"{name}_bz"], [f"{name}_bd"], axis=0),
            h.make_node("Conv", [source, f"{name}_wd", f"{name}_bd"], [name], name=name),
        ]

    nodes = [*qdq("x", "xd"), *conv("xd", "c1"), *qdq("c1", "d1")]
    if skip == "conv, own DQ":
        nodes.append(h.make_node("DequantizeLinear", ["d1_q", "s", "z128"], ["d1b"], name="d1b_DQ"))
    nodes += [*conv("d1b" if skip == "conv, own DQ" else "d1", "c2"), *qdq("c2", "d2")]
    skip_input = {"conv": "d1", "conv, own DQ": "d1", "input": "xd", "float": "c1"}[skip]
    nodes.append(h.make_node("Add", [skip_input, "d2" if branch == "conv" else "k"], ["sum"], name="residual"))
    if after == "relu":
        nodes.append(h.make_node("Relu", ["sum"], ["y"]))
    elif after == "quantized at 0":
        nodes += qdq("sum", "y", zero="z0")
    elif after == "quantized, zero point by default":
        nodes += qdq("sum", "y", zero=None)
    else:
        nodes += qdq("sum", "y")
    graph = h.make_graph(
        nodes,
        "linear_bottleneck",
        [h.make_tensor_value_info("x", tensor.FLOAT, SHAPE)],
        [h.make_tensor_value_info("y", tensor.FLOAT, SHAPE)],
        inits,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
