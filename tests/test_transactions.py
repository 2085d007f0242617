"""Nothing lost: an export is a transaction, writers refuse existing files, readers check the manifest's
hashes, predict reads every input before it writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from PIL import Image

from segdeploy.cli import app
from segdeploy.errors import SegdeployError
from segdeploy.export import onnx_export
from segdeploy.export.pipeline import export_artifacts
from segdeploy.files import staged_folder
from segdeploy.interrupts import Interrupted, signals_as_exceptions

from .conftest import REPO
from .helpers import one_line_error, tiny_recipe


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_artifacts(tiny_recipe(), None, tmp_path_factory.mktemp("tx") / "exp", log=lambda _: None)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failed_forced_export_keeps_the_old_folder_whole(exported, tmp_path, monkeypatch):
    out = tmp_path / "exp"
    export_artifacts(tiny_recipe(), None, out, log=lambda _: None)
    (out / "parity.json").write_text("{}")
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise SegdeployError(f"{kwargs['shown']}: validation failed")

    monkeypatch.setattr(onnx_export, "validate", broken)
    with pytest.raises(SegdeployError, match=str(out / "model.onnx")):
        export_artifacts(tiny_recipe(), None, out, force=True, log=lambda _: None)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_forced_export_replaces_the_export_and_keeps_other_files(tmp_path):
    out = tmp_path / "exp"
    export_artifacts(tiny_recipe(), None, out, log=lambda _: None)
    (out / "notes.txt").write_text("mine")
    old = json.loads((out / "manifest.json").read_text())
    export_artifacts(tiny_recipe(), None, out, force=True, log=lambda _: None)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["created"] >= old["created"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_staged_folder_leaves_nothing_on_interruption(tmp_path):
    target = tmp_path / "a" / "b"
    with pytest.raises(Interrupted), signals_as_exceptions(), staged_folder(target) as staging:
        (staging / "x").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["bench", "parity"])
def test_json_writers_refuse_an_existing_file(exported, tiny_data, tmp_path, runner, command):
    target = exported.out_dir / "model.onnx"
    before = target.read_bytes()
    args = [command, str(exported.onnx)] if command == "bench" else [command, str(exported.out_dir)]
    args += ["--data", str(tiny_data)] if command == "parity" else ["--iterations", "1", "--no-memory"]
    one_line_error(runner.invoke(app, [*args, "--json", str(target)]), "already exists", "--force")
    assert target.read_bytes() == before


def test_readers_refuse_an_artifact_the_manifest_does_not_describe(exported, tmp_path, runner, tiny_data):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in exported.out_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"]["model.onnx"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for args in (
        ["parity", str(folder), "--data", str(tiny_data)],
        ["bench", str(folder / "model.onnx"), "--iterations", "1", "--no-memory"],
        ["predict", str(folder / "model.onnx"), str(tiny_data.parent / "images"), "--out", str(tmp_path / "p")],
    ):
        one_line_error(runner.invoke(app, args), "model.onnx", "sha256 differs")
    from segdeploy.runtime import Segmenter

    with pytest.raises(SegdeployError, match="sha256 differs"):
        Segmenter(folder / "model.onnx")


def test_predict_reads_every_input_before_writing(exported, tiny_data, tmp_path, runner):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index, source in enumerate(sorted((tiny_data.parent / "images").glob("*.png"))[:3]):
        (inputs / f"{index}.png").write_bytes(source.read_bytes())
    data = (inputs / "1.png").read_bytes()
    (inputs / "1.png").write_bytes(data[: len(data) // 2])
    one_line_error(
        runner.invoke(app, ["predict", str(exported.onnx), str(inputs), "--out", str(tmp_path / "o")]), "1.png"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["predict", "export", "calibrate"])
def test_out_pointing_at_a_file_is_one_line(exported, tiny_data, tmp_path, runner, command):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    args = {
        "predict": ["predict", str(exported.onnx), str(tiny_data.parent / "images"), "--out", str(taken)],
        "export": ["export", "lraspp", "--out", str(taken)],
        "calibrate": ["calibrate", "--data", str(tiny_data), "--num", "8", "--out", str(taken)],
    }[command]
    one_line_error(runner.invoke(app, args), "taken", "not a folder")
    assert taken.read_text() == "mine"


def test_predict_masks_are_all_written_together(exported, tiny_data, tmp_path):
    from segdeploy.look.predict import predict

    out = tmp_path / "o"
    result = predict(exported.onnx, [tiny_data.parent / "images"], out, with_overlay=True, show_progress=False)
    assert len(result.masks) == 12 and all(p.is_file() for p in result.masks + result.overlays)
    assert Image.open(result.masks[0]).mode == "P"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_json_never_holds_a_bare_nan(tmp_path):
    from segdeploy.files import read_json, write_json

    write_json(tmp_path / "a.json", {"x": float("nan"), "y": [float("inf"), 1.5]})
    text = (tmp_path / "a.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": [None, 1.5]}
    (tmp_path / "b.json").write_text('{"x": NaN}')
    assert read_json(tmp_path / "b.json") == {"x": None}


WRITER = """
import sys, time
from pathlib import Path
from segdeploy.files import staged_folder
with staged_folder(Path(sys.argv[1])) as staging:
    (staging / "half.bin").write_bytes(b"x")
    print("ready", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_and_a_killed_writer_s_staging_is_removed(tmp_path):
    """Issue 24, kind 5: a live writer holds the target's lock; once it is SIGKILLed (the OOM killer),
    the next writer removes the staging folder it left and says so."""
    target = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        with (
            pytest.raises(SegdeployError, match=f"{target}: pid {writer.pid} is writing it now"),
            staged_folder(target),
        ):
            pass
    finally:
        writer.kill()
        writer.wait()
    [left] = tmp_path.glob(".out.staging-*")
    said: list[str] = []
    with staged_folder(target, log=said.append) as staging:
        (staging / "whole.bin").write_bytes(b"y")
    assert said == [f"removed {left}, left by a run that was killed before it finished"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in target.iterdir()] == ["whole.bin"]


def test_an_export_that_finished_meanwhile_is_not_replaced(tmp_path, monkeypatch):
    """Issue 24, kind 5: a second export passed the 'already exists' check before the first finished,
    and takes the writer's lock after the first released it; it checks again under the lock and is
    refused, leaving the first export whole."""
    from segdeploy.export import pipeline

    out, real, first = tmp_path / "exp", pipeline.check_precision_inputs, {}

    def first_finishes_meanwhile(*args):
        monkeypatch.setattr(pipeline, "check_precision_inputs", real)
        export_artifacts(tiny_recipe(), None, out, log=lambda _: None)
        first.update(_snapshot(out))
        return real(*args)

    monkeypatch.setattr(pipeline, "check_precision_inputs", first_finishes_meanwhile)
    with pytest.raises(SegdeployError, match=f"{out / 'model.onnx'}: already exists; pass --force"):
        export_artifacts(tiny_recipe(), None, out, log=lambda _: None)
    assert first and _snapshot(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_force_through_a_symlinked_out_replaces_the_folder_it_names(tmp_path):
    """Issue 24, kind 5: `--force` with an --out that is a symbolic link follows it: the folder it names
    is swapped (staged beside that folder, on its disk) and the link stays a link."""
    real, link = tmp_path / "disk" / "exp", tmp_path / "exp"
    export_artifacts(tiny_recipe(), None, real, log=lambda _: None)
    (real / "notes.txt").write_text("mine")
    link.symlink_to(real)
    old = _snapshot(real)
    export_artifacts(tiny_recipe(), None, link, force=True, log=lambda _: None)
    assert link.is_symlink() and link.resolve() == real
    assert (real / "notes.txt").read_text() == "mine" and _snapshot(real) != old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "exp"]
    assert [p.name for p in (tmp_path / "disk").iterdir()] == ["exp"]
