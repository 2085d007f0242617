"""Shared fixtures: a tiny procedural data set, the real data sets when present, a CLI runner."""

from __future__ import annotations

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
