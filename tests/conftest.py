"""Shared fixtures: a tiny procedural data set and an export of a tiny model, the real data sets when
present, a CLI runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from segdeploy.data.calibration import write_calibration_set
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.export.pipeline import export_artifacts

from .helpers import tiny_recipe

USER_MODEL = "tests.fixtures.user_models:tiny"  # a model that exports in a second

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"

torch.set_num_threads(2)
torch.set_flush_denormal(True)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train + 4 val procedural field images of 64x96, as files with a dataset YAML."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("tiny"), n_train=8, n_val=4, size=(64, 96), seed=1)


@pytest.fixture(scope="session")
def world(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs the bad-input and interruption tests share and none may change: the tiny data set, a recipe
    of a tiny user model, its export and a calibration set (with pristine copies under pristine/)."""
    root = tmp_path_factory.mktemp("world")
    recipe = tiny_recipe().replace(name="tiny", architecture=USER_MODEL, encoder=None)
    recipe_path = root / "tiny.yaml"
    recipe_path.write_text(yaml.safe_dump(json.loads(json.dumps(recipe.to_dict())), sort_keys=False))
    export = export_artifacts(recipe, None, root / "exp", log=lambda _: None)
    write_calibration_set(root / "calib", tiny_data, "train", 8, 0, recipe.mean, recipe.std)
    images = tiny_data.parent / "images"
    for shared in (tiny_data.parent, root / "exp", root / "calib"):  # pristine copies, see _restore
        shutil.copytree(shared, root / "pristine" / shared.name)
    return {
        "data": tiny_data,
        "recipe": recipe_path,
        "exp": export.out_dir,
        "onnx": export.onnx,
        "ckpt": export.checkpoint,
        "calib": root / "calib",
        "images": images,
        "img": sorted(images.iterdir())[0],
    }


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def real_dataset(name: str) -> Path:
    if not (SHARED / name).is_dir():
        pytest.skip(f"real data set {SHARED / name} not present")
    return REPO / "recipes" / "data" / f"{name}.yaml"
