"""The INT8 speed gate on the strict stand-ins: the fake engine adds a chosen device time per enqueue to
the fake CUDA clock (STATE.compute_ms, per engine precision), so the CUDA events the bench runner reads
are the only timing any assertion sees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from segdeploy.cli import app
from segdeploy.data.calibration import write_calibration_set
from segdeploy.export.pipeline import export_artifacts
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.tensorrt.sidecar import read_engine_manifest

from .helpers import tiny_recipe

SHAPE = "1x3x64x96"  # the tiny recipe's opt shape


@pytest.fixture(scope="module")
def calibration(tiny_data, tmp_path_factory):
    return write_calibration_set(tmp_path_factory.mktemp("calib") / "set", tiny_data, num=8)


@pytest.fixture(scope="module")
def reduced(calibration, tmp_path_factory):
    """model.onnx, model.fp16.onnx and model.int8.onnx (Q/DQ) of a tiny model."""
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    options = PrecisionOptions(fp16=True, calibration=calibration.directory, method="minmax", max_miou_drop=1.0)
    return export_artifacts(recipe, None, tmp_path_factory.mktemp("gate"), precision=options, log=lambda _: None)


def _folder(reduced, tmp_path: Path, *names: str) -> Path:
    """A folder holding copies of some of the export's graphs."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in names:
        shutil.copy(reduced.out_dir / name, folder / name)
    return folder


def _gate(engine: Path) -> dict:
    return read_engine_manifest(engine).raw["speed_gate"]


def _lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("speed gate:")]


def test_int8_slower_than_fp16_is_said_and_recorded(fake_trt, reduced, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.fp16.onnx", "model.int8.onnx")
    fake_trt.STATE.compute_ms = {"INT8": 2.0, "FP16": 0.5}  # + 0.25 ms between any two fake events
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx")])
    assert result.exit_code == 0, result.output
    assert _lines(result) == [
        f"speed gate: INT8 2.25 ms vs FP16 0.75 ms per frame at {SHAPE}: INT8 is NOT faster (3.00x)"
    ]
    gate = _gate(folder / "model.int8.plan")
    assert gate["int8_faster"] is False and gate["fp16_engine"] == "model.fp16.plan" and not gate["fp16_reused"]
    assert (gate["int8_ms_per_frame"], gate["fp16_ms_per_frame"], gate["timed"]) == (2.25, 0.75, "gpu_compute")
    assert read_engine_manifest(folder / "model.fp16.plan").precision == "fp16"  # built as the graph is typed


def test_int8_faster_than_fp16_says_by_how_much(fake_trt, reduced, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.fp16.onnx", "model.int8.onnx")
    fake_trt.STATE.compute_ms = {"INT8": 0.25, "FP16": 1.0}
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx")])
    assert _lines(result) == [f"speed gate: INT8 0.50 ms vs FP16 1.25 ms per frame at {SHAPE}: INT8 2.5x faster"]
    assert _gate(folder / "model.int8.plan")["int8_faster"] is True


def test_an_fp16_engine_beside_it_is_reused_not_rebuilt(fake_trt, reduced, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.fp16.onnx", "model.int8.onnx")
    assert runner.invoke(app, ["build", str(folder / "model.fp16.onnx")]).exit_code == 0
    fp16 = (folder / "model.fp16.plan").read_bytes()
    builds = len(fake_trt.STATE.builds)
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx")])
    assert result.exit_code == 0, result.output
    assert len(fake_trt.STATE.builds) == builds + 1  # the INT8 engine only
    assert (folder / "model.fp16.plan").read_bytes() == fp16 and _gate(folder / "model.int8.plan")["fp16_reused"]


def test_a_stale_fp16_engine_is_not_reused_nor_overwritten_without_force(fake_trt, reduced, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.fp16.onnx", "model.int8.onnx")
    assert runner.invoke(app, ["build", str(folder / "model.fp16.onnx")]).exit_code == 0
    fake_trt.configure("10.4.0.26")  # another TensorRT: that FP16 engine would not even load
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx")])
    assert result.exit_code == 0, result.output
    assert len(_lines(result)) == 1 and "model.fp16.plan was built from another graph, TensorRT" in _lines(result)[0]
    assert "skipped" in _gate(folder / "model.int8.plan")
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx"), "--force"])
    assert _lines(result)[0].startswith("speed gate: INT8") and not _gate(folder / "model.int8.plan")["fp16_reused"]


def test_tensorrt_11_without_model_fp16_onnx_skips_in_one_line(fake_trt, reduced, tmp_path, runner):
    fake_trt.configure("11.0.0")
    folder = _folder(reduced, tmp_path, "model.onnx", "model.int8.onnx")
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx")])
    assert result.exit_code == 0, result.output
    assert _lines(result) == [
        "speed gate: skipped: no model.fp16.onnx beside model.int8.onnx and TensorRT 11.0.0 has no builder-flag "
        "FP16 to make one from model.onnx; export with --fp16 to compare"
    ]
    assert _gate(folder / "model.int8.plan") == {"skipped": _lines(result)[0]}
    assert not (folder / "model.flags-fp16.plan").exists()


def test_builder_flag_int8_is_compared_with_builder_flag_fp16(fake_trt, reduced, calibration, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.onnx")
    fake_trt.STATE.compute_ms = {"INT8": 0.75, "FP16": 1.75}
    args = ["build", str(folder / "model.onnx"), "--int8", "--calib", str(calibration.directory), "--calib-batch", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _lines(result) == [f"speed gate: INT8 1.00 ms vs FP16 2.00 ms per frame at {SHAPE}: INT8 2.0x faster"]
    fp16 = read_engine_manifest(folder / "model.flags-fp16.plan")
    assert (fp16.precision, fp16.mode) == ("fp16", "builder-flags") and "INT8" not in fp16.raw["build"]["builder_flags"]


def test_no_speed_gate_builds_nothing_more(fake_trt, reduced, tmp_path, runner):
    folder = _folder(reduced, tmp_path, "model.fp16.onnx", "model.int8.onnx")
    result = runner.invoke(app, ["build", str(folder / "model.int8.onnx"), "--no-speed-gate"])
    assert result.exit_code == 0 and _lines(result) == [] and len(fake_trt.STATE.builds) == 1
    assert "speed_gate" not in read_engine_manifest(folder / "model.int8.plan").raw


def test_export_with_int8_gates_the_engines_it_built(fake_trt, calibration, tmp_path, runner):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps({**recipe.to_dict(), "name": "tiny"}))
    fake_trt.STATE.compute_ms = {"INT8": 2.0, "FP16": 0.5}
    out = tmp_path / "exp"
    args = ["export", str(path), "--out", str(out), "--fp16", "--int8", "--calib", str(calibration.directory)]
    result = runner.invoke(app, [*args, "--calib-method", "minmax", "--max-miou-drop", "1"])
    assert result.exit_code == 0, result.output
    assert len(_lines(result)) == 1 and "INT8 is NOT faster" in _lines(result)[0]
    assert _gate(out / "model.int8-fp16.plan")["fp16_reused"]  # the export's own model.fp16.plan
