"""Calibration sets, FP16 and INT8 graphs, the Q/DQ rules, and the INT8 accuracy guard."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from segdeploy.cli import app
from segdeploy.data.calibration import write_calibration_set
from segdeploy.data.spec import load_dataset_spec
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.errors import SegdeployError
from segdeploy.export.pipeline import export_artifacts
from segdeploy.files import sha256_of
from segdeploy.models.checkpoint import load_model, save_checkpoint
from segdeploy.parity import ParityOptions, run_parity
from segdeploy.quantize.fp16 import FP16_BLOCK_LIST
from segdeploy.quantize.int8 import qdq_violations
from segdeploy.quantize.int8_cpu import float_conv_skips, onnxruntime_kernels
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.train.loop import train

from .helpers import one_line_error, tiny_recipe
from .residual_graphs import AFTERS, SHAPE, linear_bottleneck


@pytest.fixture(scope="module")
def field_data(tmp_path_factory):
    """20 train + 6 val procedural images, enough for a calibration set to choose from."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("field"), n_train=20, n_val=6, size=(64, 96), seed=2)


@pytest.fixture(scope="module")
def calibration(field_data, tmp_path_factory):
    return write_calibration_set(tmp_path_factory.mktemp("calib") / "set", field_data, num=8)


@pytest.fixture(scope="module")
def trained_unet(field_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("unet")
    return train(
        tiny_recipe(epochs=2), load_dataset_spec(field_data), out, show_progress=False, log=lambda _: None
    ).best


def test_calibration_choice_is_deterministic_and_covers_rare_classes(field_data, tmp_path, runner):
    args = ["calibrate", "--data", str(field_data), "--num", "8"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b")]).exit_code == 0
    first, second = (json.loads((tmp_path / n / "manifest.json").read_text()) for n in "ab")
    assert first["ids"] == second["ids"] and len(first["ids"]) == 8
    coverage = first["class_coverage"]
    assert all(coverage["selected"][c]["images"] > 0 for c in ("soil", "crop", "weed"))
    assert coverage["selected"]["crop"]["pixel_fraction"] >= coverage["split"]["crop"]["pixel_fraction"]
    assert first["preprocessing"] == {
        "size": [64, 96],
        "channels": 3,
        "layout": "RGB uint8 frames",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert (tmp_path / "a" / "ids.txt").read_text().split() == first["ids"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--num", "4"], ["--num 4", "at least 8"]),
        (["--num", "50"], ["20 images", "--num 50"]),
        (["--split", "test"], ["no split 'test'"]),
    ],
)
def test_bad_calibration_requests(field_data, tmp_path, runner, args, fragments):
    result = runner.invoke(app, ["calibrate", "--data", str(field_data), "--out", str(tmp_path / "c"), *args])
    one_line_error(result, *fragments)
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_mismatched_or_empty_calibration_sets_are_refused(trained_unet, calibration, field_data, tmp_path, runner):
    base = ["export", "--checkpoint", str(trained_unet), "--int8", "--out"]
    other = tmp_path / "other-norm"
    write_calibration_set(other, field_data, num=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    one_line_error(runner.invoke(app, [*base, str(tmp_path / "e1"), "--calib", str(other)]), "normalisation", "differs")
    empty = tmp_path / "empty"
    empty.mkdir()
    manifest = json.loads((calibration.directory / "manifest.json").read_text())
    (empty / "manifest.json").write_text(json.dumps({**manifest, "ids": []}))
    one_line_error(runner.invoke(app, [*base, str(tmp_path / "e2"), "--calib", str(empty)]), "empty")
    small = tmp_path / "small"
    small.mkdir()
    (small / "manifest.json").write_text(json.dumps({**manifest, "ids": manifest["ids"][:3]}))
    one_line_error(runner.invoke(app, [*base, str(tmp_path / "e3"), "--calib", str(small)]), "3 images", "fewer")
    odd = tmp_path / "odd-size"
    odd.mkdir()
    (odd / "manifest.json").write_text(
        json.dumps({**manifest, "preprocessing": {**manifest["preprocessing"], "size": [50, 70]}})
    )
    one_line_error(runner.invoke(app, [*base, str(tmp_path / "e4"), "--calib", str(odd)]), "50x70", "does not fit")
    one_line_error(
        runner.invoke(app, [*base, str(tmp_path / "e5"), "--calib", str(tmp_path / "nope")]), "not a calibration set"
    )
    one_line_error(runner.invoke(app, [*base, str(tmp_path / "e6")]), "--int8 needs --calib")
    assert not any((tmp_path / f"e{i}" / "model.onnx").exists() for i in range(1, 7))


@pytest.fixture(scope="module")
def reduced_export(trained_unet, calibration, tmp_path_factory):
    out = tmp_path_factory.mktemp("reduced")
    options = PrecisionOptions(fp16=True, calibration=calibration.directory, method="minmax", max_miou_drop=1.0)
    return export_artifacts(None, trained_unet, out, precision=options, log=lambda _: None)


def test_fp16_graph_keeps_io_types_and_blocks_sensitive_ops(reduced_export):
    fp16 = onnx.load(str(reduced_export.reduced["model.fp16.onnx"]))
    for value in [*fp16.graph.input, *fp16.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = [t for t in fp16.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    # U-Net's decoder upsamples nearest-neighbour: copies, exact in float16, so no Resize stays float32
    resizes = [n for n in fp16.graph.node if n.op_type == "Resize"]
    assert resizes and all(a.s == b"nearest" for n in resizes for a in n.attribute if a.name == "mode")
    producers = {out: n for n in fp16.graph.node for out in n.output}
    wrapped = [r for r in resizes if producers[r.input[0]].op_type == "Cast"]
    assert "Resize" in FP16_BLOCK_LIST and not wrapped  # no float32 island around them
    entry = json.loads(reduced_export.manifest.read_text())["artifacts"]["model.fp16.onnx"]
    assert "Resize" not in entry["kept_in_float32"] and entry["precision"] == "fp16"


def test_int8_graph_follows_the_qdq_rules(reduced_export):
    path = reduced_export.reduced["model.int8.onnx"]
    assert qdq_violations(path) == []
    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear", conv.name
        weight, scale, zero = (init[i] for i in dq.input)
        assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],) and not zero.any()
        assert next(a.i for a in dq.attribute if a.name == "axis") == 0
    entry = json.loads(reduced_export.manifest.read_text())["artifacts"]["model.int8.onnx"]
    assert entry["qdq_rules_violations"] == [] and entry["calibration"]["images"] == 8
    structure = entry["qdq_structure"]
    assert structure["weighted_ops"] == len(convs) and structure["float_activation_bytes"] > 0
    assert structure["weighted_ops_fully_quantized_share"] == 1.0 and structure["weighted_outputs_with_qdq"] == 0
    assert structure["adds_one_quantized"] > 0 and structure["adds_two_quantized"] == 0
    assert structure["concats_unequal_scales"] == 0
    assert len(structure["input_shape"]) == 4


def test_int8_graph_for_tensorrt_10_has_its_float_remainder_in_fp16(reduced_export, field_data):
    path = reduced_export.reduced["model.int8-fp16.onnx"]
    assert qdq_violations(path) == []
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 19
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    init = {t.name: t for t in model.graph.initializer}
    dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert dqs and all(init[n.input[1]].data_type == onnx.TensorProto.FLOAT16 for n in dqs)
    biases = [init[n.input[2]] for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 2]
    assert biases and all(b.data_type == onnx.TensorProto.FLOAT16 for b in biases)
    manifest = json.loads(reduced_export.manifest.read_text())["artifacts"]
    entry, guard = manifest["model.int8-fp16.onnx"], manifest["model.int8.onnx"]["accuracy_guard"]
    assert (entry["precision"], entry["float_remainder"], entry["built_from"]) == ("int8", "fp16", "model.int8.onnx")
    # ONNX Runtime runs it (without WeightBiasQuantization, which would int32-quantize biases with
    # float16 scales that underflow): the same classes as the FP32-remainder graph, nearly everywhere.
    assert abs(entry["val_miou"] - guard["int8_miou"]) < 0.02 and guard["fp16_remainder_miou"] == entry["val_miou"]
    from segdeploy.backends import open_backend

    frames = np.random.default_rng(1).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    with open_backend(path) as twin, open_backend(reduced_export.reduced["model.int8.onnx"]) as int8:
        a, b = twin.run(frames), int8.run(frames)
        # float16 scales around a Concat: ONNX Runtime's QLinearConcat refuses them, so they run unfused
        assert (twin.settings()["qdq_fusions"], int8.settings()["qdq_fusions"]) == (False, True)
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.95 and np.abs(a - b).max() < 1.0


def test_int8_graph_for_cpu_fuses_every_conv_in_onnx_runtime(reduced_export):
    """Issue 22: on ONNX Runtime the TensorRT placement fuses no conv (its outputs and biases stay float), so
    it runs slower than FP32; the CPU graph (U8S8, ONNX Runtime's placement) runs every conv as QLinearConv."""
    path = reduced_export.reduced["model.int8-cpu.onnx"]
    entry = json.loads(reduced_export.manifest.read_text())["artifacts"]["model.int8-cpu.onnx"]
    assert (entry["kind"], entry["precision"], entry["sha256"]) == ("onnx", "int8", sha256_of(path))
    assert entry["meant_for"].startswith("onnxruntime") and entry["calibration"] == {"images": 8, "method": "minmax"}
    guard = entry["accuracy_guard"]
    assert guard["int8_miou"] == reduced_export.int8.cpu.int8_miou and guard["max_miou_drop"] == 1.0
    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    activations = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in init]
    assert activations and all(init[n.input[2]].dtype == np.uint8 for n in activations)
    kernels = entry["onnxruntime_kernels"]
    convs = sum(n.op_type == "Conv" for n in model.graph.node)
    assert kernels == onnxruntime_kernels(path) and kernels["QLinearConv"] == convs and kernels["float_conv"] == 0
    tensorrt = onnxruntime_kernels(reduced_export.reduced["model.int8.onnx"])
    assert tensorrt["QLinearConv"] == 0 and tensorrt["float_conv"] == convs
    manifest = json.loads(reduced_export.manifest.read_text())["artifacts"]
    assert manifest["model.int8.onnx"]["accuracy_guard"]["cpu_miou"] == guard["int8_miou"]


@pytest.mark.parametrize("after", AFTERS)
@pytest.mark.parametrize(
    ("skip", "branch"), [("conv", "conv"), ("conv, own DQ", "conv"), ("input", "conv"), ("conv", "constant")]
)
def test_the_cpu_graph_feeds_a_conv_skip_to_an_add_without_relu_in_float(tmp_path, after, skip, branch):
    """Issue 22: OpenVINO's INT8 drifts on a residual Add with no ReLU after it whose skip is a conv's quantized
    output (LR-ASPP: 0.05 mIoU). Only that skip goes float; the conv branch and rectified sums stay quantized."""
    import onnxruntime as ort

    path = linear_bottleneck(tmp_path / "block.onnx", after, skip, branch)
    model = onnx.load(str(path))
    rewired = float_conv_skips(model)
    assert rewired == (["residual"] if after == "none" and skip != "input" and branch == "conv" else [])
    onnx.checker.check_model(model)
    add = next(n for n in model.graph.node if n.name == "residual")
    assert add.input[1] == ("d2" if branch == "conv" else "k")  # the branch keeps its Q/DQ: its conv still fuses
    if not rewired:
        assert model == onnx.load(str(path))
        return
    assert add.input[0] == "c1"
    # the DequantizeLinear only the Add read is gone; one conv2 reads stays
    assert {n.name for n in model.graph.node if n.op_type == "DequantizeLinear" and n.name.startswith("d1")} == (
        {"d1_DQ"} if skip == "conv" else {"d1b_DQ"}
    )
    rewritten = tmp_path / "rewritten.onnx"
    onnx.save(model, rewritten)
    x = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32)
    before, after_rewrite = (
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        for p in (path, rewritten)
    )
    assert np.abs(before - after_rewrite).max() <= 0.05 + 1e-6  # the skip's rounding: at most one step of 0.05
    # conv1 now also feeds the Add in float, so ONNX Runtime runs it unfused; conv2 stays QLinearConv
    assert (onnxruntime_kernels(path)["QLinearConv"], onnxruntime_kernels(rewritten)["QLinearConv"]) == (2, 1)


def test_an_int8_cpu_graph_above_the_gate_fails_the_export(reduced_export):
    """The CPU graph is held to the INT8 gate like the TensorRT ones: its drop alone fails the export."""
    int8 = reduced_export.int8
    cpu = dataclasses.replace(int8.cpu, int8_miou=int8.fp32_miou - 0.5, max_drop=0.01)
    strict = dataclasses.replace(
        reduced_export,
        int8=dataclasses.replace(
            int8, int8_miou=int8.fp32_miou, max_drop=0.01, fp16_remainder_miou=int8.fp32_miou, cpu=cpu
        ),
    )
    with pytest.raises(SegdeployError, match=r"model.int8-cpu.onnx: INT8 mIoU drop 0.5000 stays above 0.01"):
        strict.check_int8_gate()


def test_qdq_checker_catches_asymmetric_zero_points(reduced_export, tmp_path):
    model = onnx.load(str(reduced_export.reduced["model.int8.onnx"]))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    zero = next(t for t in model.graph.initializer if t.name == q.input[2])
    zero.CopyFrom(numpy_helper.from_array(np.array(3, dtype=np.int8), zero.name))
    onnx.save(model, str(tmp_path / "bad.onnx"))
    assert any("zero point not 0" in p for p in qdq_violations(tmp_path / "bad.onnx"))


def test_parity_lists_every_precision_and_saves_disagreement_maps(reduced_export, field_data, tmp_path):
    report = run_parity(
        reduced_export.out_dir,
        load_dataset_spec(field_data),
        options=ParityOptions(save_disagreement=tmp_path / "maps"),
    )
    assert [r.precision for r in report.rows] == ["fp32", "fp32", "fp16", "int8", "int8", "int8"]
    assert report.rows[2].max_abs_logit_diff is not None
    assert report.rows[-1].artifact == "model.int8-cpu.onnx" and report.rows[-1].passed
    maps = sorted((tmp_path / "maps").rglob("*.png"))
    assert {p.parent.name for p in maps} == {"model", "model-fp16", "model-int8", "model-int8-fp16", "model-int8-cpu"}
    assert len(maps) == 30


@pytest.fixture(scope="module")
def three_layer(field_data, tmp_path_factory):
    recipe = tiny_recipe(epochs=3).replace(architecture="tests.fixtures.user_models:three_layer", encoder=None)
    recipe = recipe.replace(train=dataclasses.replace(recipe.train, lr=1e-2))
    out = tmp_path_factory.mktemp("three")
    return train(recipe, load_dataset_spec(field_data), out, show_progress=False, log=lambda _: None).best


def test_sensitivity_ranking_on_request(three_layer, calibration, tmp_path, runner):
    result = runner.invoke(
        app,
        [
            "export",
            "--checkpoint",
            str(three_layer),
            "--out",
            str(tmp_path),
            "--int8",
            "--calib",
            str(calibration.directory),
            "--calib-method",
            "minmax",
            "--max-miou-drop",
            "1",
            "--sensitivity",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "error alone" in result.output and "Conv" in result.output
    assert "3/3 weighted ops with both inputs quantized" in result.output
    guard = json.loads((tmp_path / "manifest.json").read_text())["artifacts"]["model.int8.onnx"]["accuracy_guard"]
    assert len(guard["sensitivity_ranking"]) == 3 and guard["kept_in_float"] == []


def test_sensitivity_fallback_repairs_an_outlier_layer(three_layer, calibration, tmp_path):
    model, meta, _ = load_model(three_layer)
    net = model.model
    with torch.no_grad():  # an exact rewrite: channel c of layer 2 x 1e4, its consumer's weights / 1e4
        hidden = net[3](net[2](net[1](net[0](torch.rand(1, 3, 64, 96)))))
        channel = int(hidden.mean((0, 2, 3)).argmax())
        net[2].weight[channel] *= 1e4
        net[2].bias[channel] *= 1e4
        net[4].weight[:, channel] /= 1e4
    outlier = save_checkpoint(tmp_path / "outlier.pt", model, meta)
    options = PrecisionOptions(calibration=calibration.directory, method="minmax", max_miou_drop=0.01)
    result = export_artifacts(None, outlier, tmp_path / "exp", precision=options, log=lambda _: None).int8
    assert result is not None
    plain_drop = result.fp32_miou - result.attempts[0]["int8_miou"]
    assert plain_drop > 0.01, result.attempts  # plain INT8 breaks the tolerance ...
    assert result.within and result.excluded  # ... and keeping the worst layers in float repairs it
    assert result.ranking[0].node in result.excluded


def test_fp16_keeps_only_the_logits_upsampling_in_float32(tmp_path):
    """nearest Resize -> bilinear Resize of features -> Conv -> bilinear Resize of logits: the last stays FP32."""
    from onnx import TensorProto, helper

    from segdeploy.quantize.fp16 import convert_fp16

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    weight = numpy_helper.from_array(np.full((3, 2, 1, 1), 0.5, np.float32), "w")
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["near"], mode="nearest", name="near"),
        helper.make_node("Resize", ["near", "", "scales"], ["feat"], mode="linear", name="features"),
        helper.make_node("Conv", ["feat", "w"], ["logits"], name="head"),
        helper.make_node("Resize", ["logits", "", "scales"], ["y"], mode="linear", name="upsample"),
    ]
    graph = helper.make_graph(
        nodes,
        "resizes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])],
        [scales, weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "a.onnx"))
    assert convert_fp16(tmp_path / "a.onnx", tmp_path / "b.onnx") == ["Resize"]
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "b.onnx")))
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert types["near"] == types["feat"] == types["logits"] == TensorProto.FLOAT16
    upsample = next(n for n in inferred.graph.node if n.name == "upsample")
    assert next(n for n in inferred.graph.node if upsample.input[0] in n.output).op_type == "Cast"
