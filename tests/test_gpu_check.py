"""benchmarks/gpu_check.sh cannot run here (no GPU): its syntax, the paths it runs, and its Python
part on the CPU with a tiny model."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from segdeploy.export.pipeline import export_artifacts

from .helpers import tiny_recipe

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _module(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_script_parses_and_its_paths_exist():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    for path in set(re.findall(r"(?:tests|benchmarks)/[\w./]+\.py", text)):
        assert (REPO / path).is_file(), path
    for recipe in re.search(r"--recipes ([\w ]+)", text)[1].split():
        assert (REPO / "recipes" / f"{recipe}.yaml").is_file(), recipe
    assert "-m gpu" in text and "--exit-check" in text


def test_parity_and_latency_rows_on_the_cpu(tmp_path, monkeypatch):
    gpu_check = _module(monkeypatch)
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    export = export_artifacts(recipe, None, tmp_path / "tiny", log=lambda _: None)
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    rows = gpu_check.check_variants(export.out_dir / "model.pt", frames, "cpu", ("eager", "channels_last"), 2)
    assert [r.variant for r in rows] == ["eager", "channels_last"] and rows[0].agreement == 1.0
    text = gpu_check.markdown(rows, "a CPU", "pytest", (64, 96))
    assert text.count("\n| tiny |") == 2 and "pixel agreement" in text
