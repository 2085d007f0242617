"""SIGTERM and SIGINT at several points of export (INT8 included), calibrate, train and predict: the
command exits 143/130 with one line, its output holds the complete old state (or the complete new one),
and no temporary file or folder remains, in the output's folder or in TMPDIR.

Each command runs in a subprocess through a driver that wraps one library function (the point): after the
function returns, the driver writes a marker file and sleeps, so that the signal lands right there. The
sleep is cut into short ones: CPython runs a handler in the main thread, and a signal the kernel hands to
another thread (ONNX Runtime's, PyTorch's) would otherwise wait for one long sleep to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO

DRIVER = """
import importlib, sys, time
from pathlib import Path
point, marker = sys.argv[1], Path(sys.argv[2])
module_name, name = point.rsplit(".", 1)
module = importlib.import_module(module_name)
original = getattr(module, name)
def paused(*args, **kwargs):
    result = original(*args, **kwargs)
    marker.write_text(point)
    for _ in range(1200):  # short sleeps: a signal that lands on another thread runs its handler at once
        time.sleep(0.1)
    return result
setattr(module, name, paused)
from segdeploy.cli import app
sys.argv = ["segdeploy", *sys.argv[3:]]
app()
"""
SIGNALS = [signal.SIGTERM, signal.SIGINT]
OWN_FILES = {".ses"}  # ONNX Runtime keeps its session id in TMPDIR/.ses, interrupted or not


def _interrupt(tmp_path: Path, point: str, args: list[str], signum: int) -> str:
    """Run `segdeploy ARGS`, signal it once it passed `point`, and return its stderr after checking the
    exit code and that TMPDIR is empty."""
    scratch, marker = tmp_path / "tmpdir", tmp_path / "marker"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, point, str(marker), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, f"finished before the point: {process.stderr.read() if process.stderr else ''}"
        assert time.monotonic() < deadline, "never reached the point"
        time.sleep(0.02)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: interrupted by"), stderr
    left = [p for p in scratch.iterdir() if p.name not in OWN_FILES]
    assert not left, f"left in TMPDIR: {left}"
    return stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _only(tmp_path: Path, *names: str) -> None:
    """Nothing beside the expected entries (no staging folder, no .tmp file)."""
    assert {p.name for p in tmp_path.iterdir()} - {"tmpdir", "marker"} == set(names)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize(
    "point",
    ["segdeploy.export.pipeline.export_onnx", "segdeploy.export.pipeline.save_checkpoint", "torch.onnx.export"],
)
def test_export_leaves_nothing_when_interrupted(world, tmp_path, point, signum):
    _interrupt(tmp_path, point, ["export", str(world["recipe"]), "--out", str(tmp_path / "e")], signum)
    _only(tmp_path)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["segdeploy.export.pipeline.export_onnx", "segdeploy.export.pipeline.write_manifest"])
def test_forced_export_keeps_the_old_folder_when_interrupted(world, tmp_path, point, signum):
    out = tmp_path / "e"
    out.mkdir()
    for path in world["exp"].iterdir():
        os.link(path, out / path.name)
    before = _files(out)
    args = ["export", str(world["recipe"]), "--out", str(out), "--force"]
    _interrupt(tmp_path, point, args, signum)
    assert _files(out) == before
    _only(tmp_path, "e")


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_int8_export_removes_its_scratch_folder_when_interrupted(world, tmp_path, signum):
    args = ["export", str(world["recipe"]), "--out", str(tmp_path / "e"), "--int8", "--calib", str(world["calib"])]
    _interrupt(tmp_path, "segdeploy.quantize.sensitivity.quantize", args, signum)  # inside segdeploy-int8-*
    _only(tmp_path)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["segdeploy.data.calibration.select_ids", "segdeploy.data.calibration.write_json"])
def test_calibrate_leaves_nothing_when_interrupted(world, tmp_path, point, signum):
    args = ["calibrate", "--data", str(world["data"]), "--num", "8", "--out", str(tmp_path / "c")]
    _interrupt(tmp_path, point, args, signum)
    _only(tmp_path)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", ["torch.save", "segdeploy.train.loop.write_json"])
def test_train_keeps_whole_checkpoints_when_interrupted(world, tmp_path, point, signum):
    run = tmp_path / "run"
    args = ["train", str(world["recipe"]), "--data", str(world["data"]), "--out", str(run), "--epochs", "2"]
    _interrupt(tmp_path, point, args, signum)
    written = sorted(p.name for p in run.iterdir()) if run.exists() else []
    assert written in ([], ["best.pt", "last.pt"], ["best.pt", "history.json", "last.pt"]), written
    if written:
        from segdeploy.models.checkpoint import read_checkpoint

        assert read_checkpoint(run / "last.pt")["epoch"] == 1


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_predict_writes_no_mask_when_interrupted(world, tmp_path, signum):
    out = tmp_path / "p"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "mine.png").write_bytes(b"kept")
    args = ["predict", str(world["onnx"]), str(world["images"]), "--out", str(out)]
    _interrupt(tmp_path, "segdeploy.look.predict._save_png", args, signum)
    assert _files(out) == {"masks/mine.png": b"kept"}
    _only(tmp_path, "p")
