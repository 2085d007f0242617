"""Training on a tiny procedural set, checkpoints (weights-only, resume, plain state dicts) and parity."""

from __future__ import annotations

import json

import pytest
import torch

from segdeploy.cli import app
from segdeploy.data.spec import load_dataset_spec
from segdeploy.export.pipeline import export_artifacts
from segdeploy.files import sha256_of
from segdeploy.models.checkpoint import load_model
from segdeploy.models.registry import build_model
from segdeploy.parity import run_parity
from segdeploy.train.loop import train

from .conftest import real_dataset
from .helpers import one_line_error, tiny_recipe


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train(tiny_recipe(epochs=2), load_dataset_spec(tiny_data), out, show_progress=False, log=lambda _: None)
    return out, result


def test_training_writes_checkpoints_and_history(trained):
    out, result = trained
    assert result.best.is_file() and result.last.is_file()
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert set(history[0]["val_iou"]) == {"soil", "crop", "weed"}
    payload = torch.load(result.last, weights_only=True)
    assert payload["format"] == "segdeploy.checkpoint/1" and payload["meta"]["class_names"] == ["soil", "crop", "weed"]


def test_resume_continues_where_it_stopped(trained, tiny_data, tmp_path):
    out, _ = trained
    for name in ("last.pt", "best.pt", "history.json"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    result = train(
        tiny_recipe(epochs=3),
        load_dataset_spec(tiny_data),
        tmp_path,
        resume=tmp_path / "last.pt",
        show_progress=False,
        log=lambda _: None,
    )
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 3


def test_resume_needs_a_last_checkpoint_and_training_never_overwrites(trained, tiny_data, tmp_path, runner):
    out, _ = trained
    result = runner.invoke(app, ["train", "unet", "--data", str(tiny_data), "--resume", str(tmp_path / "last.pt")])
    one_line_error(result, "last.pt", "nothing to resume")
    result = runner.invoke(app, ["train", "unet", "--data", str(tiny_data), "--out", str(out)])
    one_line_error(result, "already exists", "--force")


def test_plain_state_dicts_load_with_a_recipe(tmp_path):
    recipe = tiny_recipe()
    model = build_model("unet", "resnet18", 3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.model.state_dict().items()}}, tmp_path / "plain.pth")
    loaded, meta, _ = load_model(tmp_path / "plain.pth", recipe)
    assert meta.class_names == ["class0", "class1", "class2"]
    for key, value in model.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"evil": object()}, tmp_path / "pickled.pt")
    from segdeploy.errors import SegdeployError

    with pytest.raises(SegdeployError, match="weights_only=True"):
        load_model(tmp_path / "pickled.pt", tiny_recipe())


def test_parity_of_trained_export_passes_and_writes_json(trained, tiny_data, tmp_path, runner):
    _, result = trained
    export_artifacts(None, result.best, tmp_path / "exp")
    report = run_parity(tmp_path / "exp", load_dataset_spec(tiny_data))
    assert report.passed and len(report.rows) == 2
    onnx_row = report.rows[1]
    assert abs(onnx_row.miou_delta) <= 1e-3 and onnx_row.pixel_agreement >= 0.999
    assert onnx_row.max_abs_logit_diff is not None and onnx_row.max_abs_logit_diff <= 1e-3
    counts = [{n: c["components"] for n, c in row.small_objects["classes"].items()} for row in report.rows]
    assert counts[0] == counts[1] and set(counts[0]) == {"soil", "crop", "weed"}  # the same ground truth
    cli = runner.invoke(
        app,
        ["parity", str(tmp_path / "exp"), "--data", str(tiny_data), "--json", str(tmp_path / "p.json")],
        env={"COLUMNS": "200"},
    )
    assert cli.exit_code == 0, cli.output
    written = json.loads((tmp_path / "p.json").read_text())
    assert written["passed"] is True and [row["backend"] for row in written["rows"]] == ["pytorch", "onnxruntime"]
    assert "parity on synthetic-field/val" in cli.output  # the table (its width depends on the terminal)


def test_parity_fails_with_exit_1_beyond_tolerance(trained, tiny_data, tmp_path, runner):
    _, result = trained
    export_artifacts(None, result.best, tmp_path / "exp")
    payload = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)
    payload["state_dict"] = {k: v * 1.5 if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    torch.save(payload, tmp_path / "exp" / "model.pt")  # the reference now disagrees with the ONNX model
    cli = runner.invoke(app, ["parity", str(tmp_path / "exp"), "--data", str(tiny_data)])
    one_line_error(cli, "model.pt", "sha256 differs")  # the manifest does not describe this reference
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    manifest["artifacts"]["model.pt"]["sha256"] = sha256_of(tmp_path / "exp" / "model.pt")
    (tmp_path / "exp" / "manifest.json").write_text(json.dumps(manifest))
    cli = runner.invoke(app, ["parity", str(tmp_path / "exp"), "--data", str(tiny_data)])
    assert cli.exit_code == 1
    assert "parity: model.onnx" in cli.stderr


def test_parity_rejects_a_dataset_with_other_classes(trained, tmp_path, runner):
    _, result = trained
    export_artifacts(None, result.best, tmp_path / "exp")
    cli = runner.invoke(app, ["parity", str(tmp_path / "exp"), "--data", str(real_dataset("isbi2012"))])
    one_line_error(cli, "3 classes", "has 2")


def test_parity_needs_an_export_folder(tmp_path, tiny_data, runner):
    cli = runner.invoke(app, ["parity", str(tmp_path), "--data", str(tiny_data)])
    one_line_error(cli, "no manifest.json")


@pytest.mark.data
def test_parity_on_cwfid_val(tmp_path):
    spec = load_dataset_spec(real_dataset("cwfid"))
    export_artifacts(tiny_recipe().replace(input_size=(64, 96)), None, tmp_path)
    report = run_parity(tmp_path, spec, "val")
    assert report.images == 8 and report.rows[1].pixel_agreement >= 0.999


def test_bn_momentum_override_reaches_every_batchnorm():
    from segdeploy.train.batchnorm import set_bn_momentum

    model = build_model("lraspp", None, 3)
    assert 0.01 in {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert set_bn_momentum(model, 0.1) > 30
    assert {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}
