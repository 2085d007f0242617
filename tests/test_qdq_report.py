"""The Q/DQ structural report on small hand-built graphs with known answers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from segdeploy.errors import SegdeployError
from segdeploy.quantize.qdq_report import qdq_report


def _qdq(name: str, source: str) -> list[onnx.NodeProto]:
    """Q then DQ of `source` into `name` (scale initializer s_<name>), zero point zp."""
    return [
        helper.make_node("QuantizeLinear", [source, f"s_{name}", "zp"], [f"q_{name}"], name=f"Q_{name}"),
        helper.make_node("DequantizeLinear", [f"q_{name}", f"s_{name}", "zp"], [name], name=f"DQ_{name}"),
    ]


def _graph(tmp_path):
    """x(N,2,4,4) -> conv1 on Q/DQ'd input and weight, output Q/DQ'd; conv2 in float, output Q/DQ'd;
    add1 (one quantized input), add2 (two), concat1 (unequal scales), concat2 (equal), concat3 (float), one
    Cast; conv3 -> Q/DQ -> conv4 -> Relu, both quantized (conv3's output Q/DQ is the fused form, not counted;
    c4 is read only by the Relu TensorRT fuses). Float outputs outside Q/DQ: a1, a2, cast, r4 (1x3x4x4
    each) and three concats (1x6x4x4) per batch item."""
    weight = np.ones((3, 2, 1, 1), np.float32)
    initializers = [
        numpy_helper.from_array(np.array(0, np.int8), "zp"),
        numpy_helper.from_array(np.zeros(3, np.int8), "zp_w"),
        numpy_helper.from_array(weight, "W"),
        numpy_helper.from_array(np.ones((3, 3, 1, 1), np.int8), "W3q"),
        numpy_helper.from_array(weight.astype(np.int8), "Wq"),
        numpy_helper.from_array(np.full(3, 0.01, np.float32), "s_w"),
        *(
            numpy_helper.from_array(np.array(s, np.float32), f"s_{n}")
            for n, s in [("xd", 0.1), ("c1d", 0.2), ("c2d", 0.3), ("c3d", 0.4)]
        ),
    ]
    nodes = [
        *_qdq("xd", "x"),
        helper.make_node("DequantizeLinear", ["Wq", "s_w", "zp_w"], ["Wd"], axis=0, name="DQ_w"),
        helper.make_node("Conv", ["xd", "Wd"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["x", "W"], ["c2"], name="conv2"),
        *_qdq("c1d", "c1"),
        *_qdq("c2d", "c2"),
        helper.make_node("Add", ["c1d", "c2"], ["a1"], name="add1"),
        helper.make_node("Add", ["c1d", "c2d"], ["a2"], name="add2"),
        helper.make_node("Concat", ["c1d", "c2d"], ["k1"], axis=1, name="concat1"),
        helper.make_node("Concat", ["c1d", "c1d"], ["k2"], axis=1, name="concat2"),
        helper.make_node("Concat", ["c2", "a1"], ["k3"], axis=1, name="concat3"),
        helper.make_node("DequantizeLinear", ["W3q", "s_w", "zp_w"], ["W3d"], axis=0, name="DQ_w3"),
        helper.make_node("Conv", ["c1d", "W3d"], ["c3"], name="conv3"),
        *_qdq("c3d", "c3"),
        helper.make_node("Conv", ["c3d", "W3d"], ["c4"], name="conv4"),
        helper.make_node("Relu", ["c4"], ["r4"], name="relu4"),
        helper.make_node("Cast", ["a1"], ["cast"], to=TensorProto.FLOAT, name="cast"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4])],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", "C", "H", "W"])
            for n in ("a2", "k1", "k2", "k3", "cast", "r4")
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "qdq.onnx"
    onnx.save(model, str(path))
    return path


def test_report_counts_a_hand_built_graph(tmp_path):
    path = _graph(tmp_path)
    report = qdq_report(path, (1, 2, 4, 4))
    assert report.to_dict() == {
        "weighted_ops": 4,
        "weighted_ops_fully_quantized": 3,
        "weighted_ops_fully_quantized_share": 0.75,
        "weighted_outputs_with_qdq": 2,
        "adds_one_quantized": 1,
        "adds_two_quantized": 1,
        "concats_unequal_scales": 1,
        "float_activation_bytes": 4 * 192 + 3 * 384,
        "casts": 1,
        "input_shape": [1, 2, 4, 4],
    }
    assert qdq_report(path, (2, 2, 4, 4)).float_activation_bytes == 2 * (4 * 192 + 3 * 384)
    assert len(report.lines()) == 3 and "3/4 weighted ops" in report.lines()[0]


def test_report_refuses_an_input_shape_of_the_wrong_rank(tmp_path):
    with pytest.raises(SegdeployError, match="qdq.onnx: input x has 4 dimensions, not 3"):
        qdq_report(_graph(tmp_path), (1, 4, 4))


def test_a_shape_reading_a_quantized_conv_output_is_no_output_qdq(tmp_path):
    """LR-ASPP's head: conv -> Q/DQ -> next conv, and Shape of the same DQ (it sizes a Resize)."""
    weight = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "W")
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c1"], name="conv1"),
        *_qdq("c1d", "c1"),
        helper.make_node("Conv", ["c1d", "W"], ["y"], name="conv2"),
        helper.make_node("Shape", ["c1d"], ["shape"], name="shape"),
    ]
    graph = helper.make_graph(
        nodes,
        "shape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [4]),
        ],
        [
            weight,
            numpy_helper.from_array(np.array(0, np.int8), "zp"),
            numpy_helper.from_array(np.array(0.1, np.float32), "s_c1d"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    assert qdq_report(tmp_path / "m.onnx", (1, 2, 4, 4)).weighted_outputs_with_qdq == 0
