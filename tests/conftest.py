"""Shared fixtures: a tiny procedural data set, the real data sets when present, a CLI runner, and the
stand-ins for TensorRT, pycuda and libcuda (tests/fixtures/fake_tensorrt.py)."""

from __future__ import annotations

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


TRT_MODULES = ("segdeploy.tensorrt.build", "segdeploy.tensorrt.cuda", "segdeploy.tensorrt.calibrator")


@pytest.fixture()
def fake_trt(monkeypatch):
    """Installs the stand-ins; modules that imported them are dropped afterwards."""
    from tests.fixtures import fake_tensorrt

    monkeypatch.setattr(fake_tensorrt, "STATE", fake_tensorrt.State())
    monkeypatch.setattr(fake_tensorrt.tensorrt, "__version__", "10.3.0.30")
    for name, module in fake_tensorrt.MODULES.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in (*TRT_MODULES, "segdeploy.backends.tensorrt_backend"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import segdeploy.tensorrt.cuda

    monkeypatch.setattr(segdeploy.tensorrt.cuda, "_driver", fake_tensorrt.Driver)
    yield fake_tensorrt
    for name in (*TRT_MODULES, "segdeploy.backends.tensorrt_backend"):
        sys.modules.pop(name, None)
