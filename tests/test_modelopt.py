"""`--quantizer modelopt`: NVIDIA ModelOpt's ONNX PTQ in its own interpreter. The plumbing runs against
the strict stand-in tests/fixtures/fake_modelopt.py; one test runs the real ModelOpt when a virtual
environment with it is there (SEGDEPLOY_MODELOPT_PYTHON, or /work/modelopt-venv)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from segdeploy.artifacts.metadata import read_onnx_metadata
from segdeploy.cli import app
from segdeploy.data.calibration import load_calibration_set
from segdeploy.data.spec import load_dataset_spec
from segdeploy.quantize.int8 import FrameFeed, qdq_violations
from segdeploy.quantize.modelopt import ModelOpt, finish_graph
from segdeploy.train.loop import train

from .conftest import REPO
from .fixtures.fake_modelopt import VERSION, interpreter
from .helpers import one_line_error, tiny_recipe

REAL = os.environ.get("SEGDEPLOY_MODELOPT_PYTHON") or "/work/modelopt-venv/bin/python"


@pytest.fixture()
def fake(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("FAKE_MODELOPT", raising=False)
    return interpreter(tmp_path)


def _export(world, out: Path, python: Path | str, *extra: str) -> list[str]:
    return [
        "export", str(world["recipe"]), "--out", str(out), "--no-engines", "--int8", "--calib", str(world["calib"]),
        "--calib-method", "minmax", "--max-miou-drop", "1", "--quantizer", "modelopt",
        "--modelopt-python", str(python), *extra,
    ]  # fmt: skip


def test_modelopt_writes_a_checked_int8_graph_and_records_itself(world, fake, tmp_path, runner):
    result = runner.invoke(app, _export(world, tmp_path / "e", fake))
    assert result.exit_code == 0, result.output
    assert f"NVIDIA ModelOpt {VERSION}" in result.output and "weighted ops with both inputs quantized" in result.output
    out = tmp_path / "e"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "model.int8-cpu.onnx", "model.int8-fp16.onnx", "model.int8.onnx", "model.onnx", "model.pt",
        "reference.npz",
    ]  # fmt: skip
    entry = json.loads((out / "manifest.json").read_text())["artifacts"]["model.int8.onnx"]
    assert entry["quantizer"] == {
        "name": "modelopt", "library": "nvidia-modelopt", "version": VERSION, "python": str(fake)
    }  # fmt: skip
    assert "Conv" in entry["quantized_op_types"] and entry["qdq_rules_violations"] == []
    assert entry["qdq_structure"]["weighted_ops_fully_quantized"] > 0
    assert entry["accuracy_guard"]["method"] == "minmax" and entry["calibration"]["images"] == 8
    model = onnx.load(str(out / "model.int8.onnx"))
    _, precision = read_onnx_metadata({p.key: p.value for p in model.metadata_props}, out / "model.int8.onnx")
    assert precision == "int8"


def test_ours_is_the_default_and_records_onnxruntime(world, tmp_path, runner):
    args = _export(world, tmp_path / "e", "unused")[:-4]
    assert runner.invoke(app, args).exit_code == 0
    entry = json.loads((tmp_path / "e" / "manifest.json").read_text())["artifacts"]["model.int8.onnx"]
    assert entry["quantizer"]["name"] == "ours" and entry["quantizer"]["library"] == "onnxruntime"


def test_the_interpreter_comes_from_the_environment(world, fake, tmp_path, runner):
    args = _export(world, tmp_path / "e", fake)[:-2]
    result = runner.invoke(app, args, env={"SEGDEPLOY_MODELOPT_PYTHON": str(fake)})
    assert result.exit_code == 0, result.output
    one_line_error(
        runner.invoke(app, args, env={"SEGDEPLOY_MODELOPT_PYTHON": None}), "--modelopt-python", "pip install"
    )


@pytest.mark.parametrize(
    "mode, python, extra, fragments",
    [
        ("missing", None, [], ["no nvidia-modelopt", 'pip install "nvidia-modelopt[onnx]"']),
        ("", "nope", [], ["cannot run it", "python -m venv"]),
        ("fail", None, [], ["ModelOpt 0.47.0+fake quantization failed (ValueError: fake ModelOpt failure)"]),
        ("", None, ["--calib-method", "percentile"], ["--calib-method percentile", "minmax or entropy only"]),
    ],
)
def test_modelopt_problems_are_one_line_and_write_nothing(
    world, fake, tmp_path, runner, monkeypatch, mode, python, extra, fragments
):
    monkeypatch.setenv("FAKE_MODELOPT", mode)
    out = tmp_path / "e"
    one_line_error(runner.invoke(app, _export(world, out, tmp_path / python if python else fake, *extra)), *fragments)
    assert not out.exists() or not any(out.iterdir())


def test_nodes_kept_in_float_reach_modelopt_as_exact_patterns(world, fake, tmp_path):
    from segdeploy.artifacts.metadata import read_onnx_metadata as read_meta

    model = onnx.load(str(world["onnx"]))
    meta, _ = read_meta({p.key: p.value for p in model.metadata_props}, world["onnx"])
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    feed = FrameFeed(load_calibration_set(world["calib"]), meta, model.graph.input[0].name)
    target = tmp_path / "model.int8.onnx"
    ModelOpt(fake, VERSION).quantize(world["onnx"], target, feed, "max", convs[:1])
    quantized = onnx.load(str(target))
    producers = {o: n.op_type for n in quantized.graph.node for o in n.output}
    kept = next(n for n in quantized.graph.node if n.name == convs[0])
    assert all(producers.get(i) != "DequantizeLinear" for i in kept.input)
    others = [n for n in quantized.graph.node if n.op_type == "Conv" and n.name != convs[0]]
    assert others and all(producers[n.input[1]] == "DequantizeLinear" for n in others)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "modelopt-python"]


def test_an_interrupted_modelopt_run_leaves_no_process_and_no_files(world, fake, tmp_path):
    scratch, out = tmp_path / "tmpdir", tmp_path / "e"
    scratch.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "FAKE_MODELOPT": "hang",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "segdeploy", *_export(world, out, fake)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (started := list(scratch.rglob("*.started"))):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "ModelOpt never started"
        time.sleep(0.05)
    time.sleep(0.2)
    child = int(started[0].read_text() or 0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.strip().splitlines()[-1].startswith("error: interrupted"), stderr
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert [p.name for p in scratch.iterdir() if p.name != ".ses"] == []
    assert not out.exists() or not any(out.iterdir())


def test_modelopts_unused_initializers_are_dropped(tmp_path):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    initializers = [
        numpy_helper.from_array(np.ones((2, 1, 1, 1), np.int8), "w"),
        numpy_helper.from_array(np.full(2, 0.01, np.float32), "s"),
        numpy_helper.from_array(np.zeros(2, np.int8), "z"),
        numpy_helper.from_array(np.zeros(2, np.int8), "unused"),
    ]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wd"], axis=0)]
    output = helper.make_tensor_value_info("wd", TensorProto.FLOAT, None)
    source, target = tmp_path / "source.onnx", tmp_path / "target.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [], [output], initializers)), str(source))
    finish_graph(source, target)
    assert [t.name for t in onnx.load(str(target)).graph.initializer] == ["w", "s", "z"]


@pytest.mark.skipif(not Path(REAL).exists(), reason=f"no ModelOpt virtual environment ({REAL}); see README")
def test_real_modelopt_exports_a_tiny_unet(world, tmp_path, runner):
    spec = load_dataset_spec(world["data"])
    unet = train(tiny_recipe(epochs=2), spec, tmp_path / "run", show_progress=False, log=lambda _: None).best
    args = _export(world, tmp_path / "e", REAL, "--calib-method", "entropy", "--checkpoint", str(unet))
    result = runner.invoke(app, [args[0], *args[2:]])  # the checkpoint's recipe
    assert result.exit_code == 0, result.output
    path = tmp_path / "e" / "model.int8.onnx"
    entry = json.loads((tmp_path / "e" / "manifest.json").read_text())["artifacts"]["model.int8.onnx"]
    assert entry["quantizer"]["name"] == "modelopt" and entry["quantizer"]["version"][:1].isdigit()
    assert entry["qdq_rules_violations"] == qdq_violations(path)
    assert entry["opset"] >= 19 and entry["float_remainder"] == "fp32"  # ModelOpt writes opset 19 at least
    twin = json.loads((tmp_path / "e" / "manifest.json").read_text())["artifacts"]["model.int8-fp16.onnx"]
    assert twin["quantizer"]["name"] == "modelopt" and twin["float_remainder"] == "fp16"
    assert abs(twin["miou_drop"]) < 0.05  # the FP16-remainder twin as written, not as ORT's bias pass breaks it
    assert entry["qdq_structure"]["weighted_ops_fully_quantized"] >= 1 and "Conv" in entry["quantized_op_types"]
    assert abs(entry["accuracy_guard"]["miou_drop"]) < 0.05


def test_a_resize_with_its_own_scales_keeps_them_float32_in_float16(tmp_path):
    """ModelOpt's graphs give each Resize its own scales constant; the FP16 conversion must leave them
    float32 (Resize takes no other type), or ONNX Runtime refuses the FP16-remainder twin."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from segdeploy.quantize.fp16 import fp16_model

    def scales(name: str) -> onnx.NodeProto:
        value = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), name)
        return helper.make_node("Constant", [], [name], name=f"{name}_constant", value=value)

    weight = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1"),
        scales("s1"),
        helper.make_node("Resize", ["c1", "", "s1"], ["r1"], name="decoder", mode="linear"),
        helper.make_node("Conv", ["r1", "w"], ["c2"], name="conv2"),
        scales("s2"),
        helper.make_node("Resize", ["c2", "", "s2"], ["y"], name="logits", mode="linear"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 16, 16])], [weight],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    converted, kept = fp16_model(model, tmp_path / "g.onnx")
    path = tmp_path / "g16.onnx"
    onnx.save(converted, str(path))
    assert kept == ["Resize"]  # the logits' upsampling; the decoder's runs in float16 with float32 scales
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones((1, 2, 4, 4), np.float32)})[0].shape == (1, 2, 16, 16)
