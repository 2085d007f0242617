"""Training that stops being finite (issue 24, kind 7): one line, the last good checkpoint kept, no
best.pt from a diverged epoch, exit code 2."""

from __future__ import annotations

import json

import yaml

from segdeploy.cli import app

from .fixtures import user_models
from .helpers import one_line_error


def test_a_loss_that_turns_nan_in_epoch_2_keeps_epoch_1(world, tmp_path, runner, monkeypatch):
    recipe = yaml.safe_load(world["recipe"].read_text())
    recipe["architecture"] = "tests.fixtures.user_models:diverging"
    recipe["train"].update(epochs=2, batch_size=4, repeats=1)
    path = tmp_path / "diverging.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.setattr(user_models, "NAN_FROM_STEP", 3)  # 8 images, batch 4: step 3 is epoch 2's first
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(path), "--data", str(world["data"]), "--out", str(run)])
    one_line_error(
        result, f"epoch 2 step 1: the loss is nan (NaN or infinite): training stopped, {run / 'last.pt'} keeps epoch 1"
    )
    assert result.exit_code == 2
    assert [entry["epoch"] for entry in json.loads((run / "history.json").read_text())] == [1]
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "history.json", "last.pt"]
