"""Q/DQ placement as TensorRT fuses it: the post-pass on hand-built graphs, and the weight axes of
quantize() for Gemm (by transB) and ConvTranspose (per tensor)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from segdeploy.quantize.int8 import qdq_violations, quantize
from segdeploy.quantize.qdq_placement import place_for_tensorrt
from segdeploy.quantize.qdq_report import qdq_report


def _qdq(name: str, source: str, scale: float) -> tuple[list[onnx.NodeProto], onnx.TensorProto]:
    nodes = [
        helper.make_node("QuantizeLinear", [source, f"s_{name}", "zp"], [f"q_{name}"]),
        helper.make_node("DequantizeLinear", [f"q_{name}", f"s_{name}", "zp"], [name]),
    ]
    return nodes, numpy_helper.from_array(np.array(scale, np.float32), f"s_{name}")


def _residual_block(path):
    """x -> Q/DQ -> conv -> Q/DQ -> Add <- Q/DQ <- relu(x) (ORT's form: both Add inputs quantized);
    concat1 of relu and conv outputs (scales 0.1 and 0.3), concat2 of a quantized and a float input."""
    parts = [_qdq("xd", "x", 0.2), _qdq("cd", "c", 0.3), _qdq("rd", "r", 0.1)]
    weight = np.full((2, 2, 1, 1), 0.5, np.float32)
    nodes = [
        *parts[0][0],
        helper.make_node("Conv", ["xd", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        *parts[1][0],
        *parts[2][0],
        helper.make_node("Add", ["cd", "rd"], ["a"], name="add"),
        helper.make_node("Concat", ["rd", "cd"], ["k1"], axis=1, name="concat1"),
        helper.make_node("Concat", ["rd", "x"], ["k2"], axis=1, name="concat2"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", "C", "H", "W"]) for n in ("a", "k1", "k2")],
        [numpy_helper.from_array(np.array(0, np.int8), "zp"), numpy_helper.from_array(weight, "w")]
        + [scale for _, scale in parts],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return model


def _chain(nodes: list[onnx.NodeProto], shape: list[int], initializers: list[onnx.TensorProto], outputs=None):
    """A model of `nodes` from input x (float, `shape`) to `outputs` [y, same shape]; zero point zp."""
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    zero = numpy_helper.from_array(np.array(0, np.int8), "zp")
    graph = helper.make_graph(nodes, "chain", inputs, outputs, [zero, *initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _place(model: onnx.ModelProto, tmp_path) -> tuple:
    """Save `model`, run the post-pass on it, check and save the result: the two paths."""
    before, after = tmp_path / "before.onnx", tmp_path / "after.onnx"
    onnx.save(model, str(before))
    place_for_tensorrt(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(after))
    return before, after


def test_post_pass_leaves_one_quantized_add_input_and_shared_concat_scales(tmp_path):
    before, after = tmp_path / "before.onnx", tmp_path / "after.onnx"
    model = _residual_block(before)
    place_for_tensorrt(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(after))
    first, second = qdq_report(before, (1, 2, 3, 3)), qdq_report(after, (1, 2, 3, 3))
    assert (first.adds_two_quantized, first.concats_unequal_scales) == (1, 2)
    assert (second.adds_one_quantized, second.adds_two_quantized, second.concats_unequal_scales) == (1, 0, 0)
    nodes = {n.name: n for n in model.graph.node}
    assert list(nodes["add"].input) == ["c", "rd"]  # the conv branch goes float, the residual stays quantized
    assert list(nodes["concat2"].input) == ["r", "x"]
    scales = {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer if t.dims == []}
    assert {scales[n.input[1]] for n in model.graph.node if n.output[0] in ("rd", "cd")} == {np.float32(0.3)}
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 3)).astype(np.float32)
    outputs = ort.InferenceSession(str(after), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert all(np.isfinite(o).all() for o in outputs)


class _Feed:
    def __init__(self) -> None:
        self.frames = [np.random.default_rng(i).normal(size=(1, 4, 5, 5)).astype(np.float32) for i in range(4)]
        self.served = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        self.served += 1
        return {"x": self.frames[self.served - 1]} if self.served <= len(self.frames) else None

    def rewind(self) -> None:
        self.served = 0

    def set_range(self, start_index: int, end_index: int) -> None:
        self.served = start_index  # one pass over all frames: stride() is their count

    def stride(self) -> int:
        return len(self.frames)


def test_gemm_weights_follow_trans_b_and_conv_transpose_weights_are_per_tensor(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("ConvTranspose", ["x", "wt"], ["y"], name="deconv"),
        helper.make_node("Flatten", ["y"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "b"], ["out"], name="gemm"),  # transB = 0: B is (K, N), channels on 1
    ]
    graph = helper.make_graph(
        nodes,
        "axes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 7])],
        [
            numpy_helper.from_array(rng.normal(size=(4, 3, 2, 2)).astype(np.float32), "wt"),
            numpy_helper.from_array(rng.normal(size=(108, 7)).astype(np.float32), "b"),
        ],
    )
    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    quantize(source, target, _Feed(), "minmax", tmp_path / "cache")  # type: ignore[arg-type]
    assert qdq_violations(target) == []
    model = onnx.load(str(target))
    producer = {o: n for n in model.graph.node for o in n.output}
    sizes = {t.name: numpy_helper.to_array(t).size for t in model.graph.initializer}
    consumers = {n.op_type: producer[n.input[1]] for n in model.graph.node if n.op_type in ("ConvTranspose", "Gemm")}
    assert sizes[consumers["ConvTranspose"].input[1]] == 1
    assert sizes[consumers["Gemm"].input[1]] == 7
    assert next(a.i for a in consumers["Gemm"].attribute if a.name == "axis") == 1


def test_rule_check_names_the_placements_tensorrt_fuses_badly(tmp_path):
    before, after = tmp_path / "before.onnx", tmp_path / "after.onnx"
    model = _residual_block(before)
    problems = qdq_violations(before)
    assert "add: Add with both inputs quantized" in problems
    assert "concat1: Concat inputs with unequal scales" in problems
    place_for_tensorrt(model)
    onnx.save(model, str(after))
    assert not [p for p in qdq_violations(after) if "Add with both" in p or "unequal scales" in p]


def test_rule_check_refuses_float16_scales_below_opset_19(tmp_path):
    model = _residual_block(tmp_path / "block.onnx")
    for tensor in model.graph.initializer:
        if tensor.name.startswith("s_"):
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    onnx.save(model, str(tmp_path / "half.onnx"))
    assert any("float16 scale at opset 17" in p for p in qdq_violations(tmp_path / "half.onnx"))


def test_calibration_feed_serves_strided_passes():
    from segdeploy.quantize.int8 import FrameFeed

    feed = FrameFeed.__new__(FrameFeed)
    feed.calibration, feed.meta, feed.input_name = None, None, "x"
    for count, stride in [(32, 4), (9, 3), (7, 1), (8, 4), (10, 2)]:
        feed.frames = list(range(count))
        feed.rewind()
        assert feed.stride() == stride
    feed.frames = list(range(8))
    feed.calibration = type("Set", (), {"feed": staticmethod(lambda frames, io: frames)})()
    feed.meta = type("Meta", (), {"io": None})()
    feed.set_range(4, 8)
    assert [feed.get_next()["x"] for _ in range(4)] == [4, 5, 6, 7] and feed.get_next() is None
    feed.rewind()
    assert feed.get_next()["x"] == 0


def test_qdq_is_repeated_through_ops_that_commute_with_it(tmp_path):
    """relu -> MaxPool -> Q/DQ -> conv; nearest Resize(conv) and relu -> Concat -> Q/DQ -> conv: the Q/DQ goes
    up through MaxPool, Concat and Resize, and relu's output, quantized twice, ends with one scale."""
    parts = [_qdq("pd", "p", 0.05), _qdq("kd", "k", 0.07), _qdq("xd", "x", 0.02)]
    weight = numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w")
    wide = numpy_helper.from_array(np.full((2, 4, 1, 1), 0.25, np.float32), "w4")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up")
    nodes = [
        *parts[2][0],
        helper.make_node("Conv", ["xd", "w"], ["c"], name="conv0"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        *parts[0][0],
        helper.make_node("Conv", ["pd", "w"], ["c1"], name="conv1"),
        helper.make_node("Resize", ["c1", "", "up"], ["u"], mode="nearest", name="resize"),
        helper.make_node("Concat", ["u", "r"], ["k"], axis=1, name="concat"),
        *parts[1][0],
        helper.make_node("Conv", ["kd", "w4"], ["y"], name="conv2"),
    ]
    model = _chain(nodes, [1, 2, 8, 8], [weight, wide, scales] + [s for _, s in parts])
    before, after = _place(model, tmp_path)
    producers = {out: n for n in model.graph.node for out in n.output}
    nodes_by_name = {n.name: n for n in model.graph.node}

    def scale_into(node: str, index: int) -> float | None:
        dq = producers.get(nodes_by_name[node].input[index])
        return None if dq is None or dq.op_type != "DequantizeLinear" else dq.input[1]

    # relu's output r is read by the MaxPool and by the Concat: both Q/DQ went up to r, which then takes one
    # scale, the larger (0.07), shared by the MaxPool's, the Concat's and the Resize's Q/DQ pairs
    shared = scale_into("pool", 0)
    assert shared not in (None, "s_pd", "s_kd") and shared == scale_into("concat", 0) == scale_into("concat", 1)
    assert scale_into("resize", 0) == scale_into("conv1", 0) == shared  # through the Concat, then the Resize
    value = next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == shared)
    assert value == np.float32(0.07)
    report = qdq_report(after, (1, 2, 8, 8))
    assert report.weighted_outputs_with_qdq == 0 and report.concats_unequal_scales == 0
    assert report.float_activation_bytes < qdq_report(before, (1, 2, 8, 8)).float_activation_bytes
    x = np.random.default_rng(0).normal(size=(1, 2, 8, 8)).astype(np.float32)
    # The graphs' meaning, Q/DQ run as written (0.035 apart): with ONNX Runtime's fused int8 kernels they were
    # 0.245 apart on an AVX2-only CPU, where 8-bit products may saturate without VNNI (its quantization guide).
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    first, second = (
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        for p in (before, after)
    )
    np.testing.assert_allclose(first, second, atol=0.05)  # MaxPool's input now at 0.07 instead of 0.05: one step


def test_hardswish_keeps_its_input_float_and_counts_as_an_epilogue(tmp_path):
    """conv -> Q/DQ -> {HardSigmoid -> Q/DQ, Mul}: ORT's quantized Mul of x and HardSigmoid(x). After the pass
    x and the gate reach the Mul in float, x is fused into the conv, and the product is quantized for conv2."""
    parts = [_qdq("xd", "x", 0.02), _qdq("cd", "c", 0.05), _qdq("gd", "g", 1 / 127), _qdq("hd", "h", 0.04)]
    weight = numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w")
    nodes = [
        *parts[0][0],
        helper.make_node("Conv", ["xd", "w"], ["c"], name="conv1"),
        *parts[1][0],
        helper.make_node("HardSigmoid", ["cd"], ["g"], alpha=1 / 6, name="gate"),
        *parts[2][0],
        helper.make_node("Mul", ["cd", "gd"], ["h"], name="hardswish"),
        *parts[3][0],
        helper.make_node("Conv", ["hd", "w"], ["y"], name="conv2"),
    ]
    model = _chain(nodes, [1, 2, 4, 4], [weight] + [s for _, s in parts])
    before, after = _place(model, tmp_path)
    nodes_by_name = {n.name: n for n in model.graph.node}
    assert list(nodes_by_name["hardswish"].input) == ["c", "g"] and list(nodes_by_name["gate"].input) == ["c"]
    first, second = qdq_report(before, (1, 2, 4, 4)), qdq_report(after, (1, 2, 4, 4))
    assert (first.weighted_outputs_with_qdq, second.weighted_outputs_with_qdq) == (1, 0)
    assert second.float_activation_bytes == 2 * 4 * 4 * 4  # y only: c, g fused into conv1, h quantized


def test_a_tensor_quantized_for_a_maxpool_and_a_concat_gets_one_scale_and_graph_outputs_stay_float(tmp_path):
    """U-Net's encoder: relu r feeds MaxPool (-> Q/DQ s1 -> conv) and a skip Concat (-> Q/DQ s2 -> conv); the
    MaxPool's output p is also a graph output. r ends with one Q scale, max(s1, s2), shared downstream; p is
    left alone (its Q/DQ is not repeated upstream: that would change the graph output's values)."""
    parts = [_qdq("pd", "p", 0.05), _qdq("kd", "k", 0.07)]
    weight = numpy_helper.from_array(np.full((2, 2, 1, 1), 0.5, np.float32), "w")
    wide = numpy_helper.from_array(np.full((2, 4, 1, 1), 0.25, np.float32), "w4")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[1, 1], name="pool"),
        *parts[0][0],
        helper.make_node("Conv", ["pd", "w"], ["c"], name="conv1"),
        helper.make_node("Concat", ["c", "r"], ["k"], axis=1, name="concat"),
        *parts[1][0],
        helper.make_node("Conv", ["kd", "w4"], ["y"], name="conv2"),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4, 4]) for n in ("y", "p")]
    model = _chain(nodes, [1, 2, 4, 4], [weight, wide] + [s for _, s in parts], outputs)
    _place(model, tmp_path)
    nodes_by_name = {n.name: n for n in model.graph.node}
    assert nodes_by_name["pool"].input[0] == "r"  # p is a graph output: nothing moved through the pool
    scales = {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer if t.dims == []}
    on_r = {scales[n.input[1]] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "r"}
    assert on_r == {np.float32(0.07)}
    assert not [p for p in qdq_violations(tmp_path / "after.onnx") if "scales" in p]
