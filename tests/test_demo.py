"""The main job: `segdeploy demo` end to end (one short epoch here; the README's run uses the default)."""

from __future__ import annotations

import json

from segdeploy.cli import app

from .helpers import one_line_error


def test_demo_runs_end_to_end(tmp_path, runner):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--epochs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (out / "export" / "model.onnx").is_file() and (out / "train" / "best.pt").is_file()
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] and [r["backend"] for r in report["rows"]] == ["pytorch", "onnxruntime"]
    assert "parity on synthetic-field/val" in result.output
    again = runner.invoke(app, ["demo", "--out", str(out), "--epochs", "1"])
    one_line_error(again, str(out), "already exists", "--force")
