"""Shared fixtures: a tiny procedural data set, the real data sets when present, a CLI runner, and the
stand-ins for TensorRT, pycuda and libcuda (tests/fixtures/fake_tensorrt.py)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from segdeploy.data.synthetic import write_synthetic_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"

torch.set_num_threads(2)
torch.set_flush_denormal(True)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train + 4 val procedural field images of 64x96, as files with a dataset YAML."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("tiny"), n_train=8, n_val=4, size=(64, 96), seed=1)


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
