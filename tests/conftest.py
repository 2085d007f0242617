"""Shared fixtures: a tiny procedural data set and an export of a tiny model, the real data sets when
present, a CLI runner, and the stand-ins for TensorRT, pycuda and libcuda (tests/fixtures/fake_tensorrt.py)."""

from __future__ import annotations

import gc
import json
import shutil
import sys
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


TRT_MODULES = (
    "segdeploy.tensorrt.build",
    "segdeploy.tensorrt.calibrator",
    "segdeploy.backends.tensorrt_backend",
    "segdeploy.cuda.pycuda_driver",
)


@pytest.fixture()
def fake_trt(monkeypatch):
    """Installs the TensorRT and pycuda stand-ins over a fresh strict CUDA stand-in; afterwards every
    TensorRT object must have been released in order, with a context, and no thread may hold one."""
    from .fixtures import fake_cuda, fake_tensorrt

    driver = fake_cuda.FakeDriver()
    monkeypatch.setattr(fake_cuda, "CURRENT", driver)
    monkeypatch.setattr(fake_tensorrt, "STATE", fake_tensorrt.State())
    fake_tensorrt.configure("10.3.0.30")
    for name, module in fake_tensorrt.MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in TRT_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    import segdeploy.cuda.select

    monkeypatch.setattr(segdeploy.cuda.select, "load_driver", lambda: fake_cuda.CURRENT)
    yield fake_tensorrt
    gc.collect()
    for name in TRT_MODULES:
        sys.modules.pop(name, None)
    fake_tensorrt.configure("10.3.0.30")
    assert fake_tensorrt.STATE.problems == [], fake_tensorrt.STATE.problems
    assert driver.leftover() == [], driver.leftover()
