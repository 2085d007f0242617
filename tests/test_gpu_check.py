"""benchmarks/gpu_check.sh cannot run here (no GPU): its syntax, the paths it runs, and its Python
part on the CPU with a tiny model."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
    assert "-m gpu" in text and "--exit-check" in text and "--noconftest" in text


def test_parity_and_latency_rows_on_the_cpu(tmp_path, monkeypatch):
    gpu_check = _module(monkeypatch)
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    export = export_artifacts(recipe, None, tmp_path / "tiny", log=lambda _: None)
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    rows = gpu_check.check_variants(export.out_dir / "model.pt", frames, "cpu", ("eager", "channels_last"), 2)
    assert [r.variant for r in rows] == ["eager", "channels_last"] and rows[0].agreement == 1.0
    text = gpu_check.markdown(rows, "a CPU", "pytest", (64, 96))
    assert text.count("\n| tiny |") == 2 and "pixel agreement" in text


# --- issue 21: the check's verdicts fail the script (sys.exit in an atexit callback is ignored) -------

EXIT_CHECK = """
import sys, types
sys.argv = ["gpu_check.py", "--exit-check"]
sys.path.insert(0, "benchmarks")
import segdeploy.cuda.select as select
from tests.fixtures.fake_cuda import FakeDriver

class Driver(FakeDriver):
    def release_primary(self, ordinal):  # LEAK: push and never pop, as pycuda's detach does
        if LEAK:
            self.push(0xC0 + ordinal)
        super().release_primary(ordinal)

driver = Driver()
select.load_driver = lambda: driver
cu = types.ModuleType("cuda.bindings.driver")
cu.cuCtxGetCurrent = lambda: (0, driver._stack()[-1] if driver._stack() else 0)
bindings = types.ModuleType("cuda.bindings")
bindings.driver = cu
sys.modules.update({"cuda": types.ModuleType("cuda"), "cuda.bindings": bindings, "cuda.bindings.driver": cu})
import gpu_check
gpu_check.main()
"""


@pytest.mark.parametrize("leak", [False, True])
def test_a_context_left_current_at_exit_fails_the_exit_check(leak):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = f"LEAK = {leak}\n{EXIT_CHECK}"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env)
    assert ("context current at exit: 0xc0" if leak else "context current at exit: none") in result.stdout
    assert result.returncode == (1 if leak else 0), result.stderr


def _fake_tools(tmp_path: Path, failing: str) -> dict[str, str]:
    """nvidia-smi, and a python that fails when its arguments contain `failing` and succeeds otherwise."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "nvidia-smi").write_text("#!/bin/sh\necho 'Fake GPU, 580.00, 81559 MiB'\n")
    (tools / "python").write_text(f'#!/bin/sh\necho "python $*"\ncase "$*" in *"{failing}"*) exit 1;; esac\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "PYTHON": str(tools / "python")}


@pytest.mark.parametrize("failing", ["--exit-check", "test_cuda_contract.py", "no step has this"])
def test_a_failing_step_fails_the_script_and_the_others_still_run(tmp_path, failing):
    env = _fake_tools(tmp_path, failing)
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=env, cwd=tmp_path)
    ran = re.findall(r"^== (\S+)", result.stdout, re.MULTILINE)
    assert ran[-3:] == ["1-cuda-contract", "2-exit-context", "3-torch-parity"], result.stdout
    assert f"--out {out}" in result.stdout and (out / "3-torch-parity.log").is_file()
    if failing == "no step has this":
        assert result.returncode == 0 and "all steps passed" in result.stdout
    else:
        step = "2-exit-context" if failing == "--exit-check" else "1-cuda-contract"
        assert result.returncode == 1 and f"gpu_check: FAILED: {step}" in result.stdout


def test_the_script_needs_an_output_folder(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=_fake_tools(tmp_path, "x"))
    assert result.returncode == 2 and "usage: benchmarks/gpu_check.sh OUT_DIR" in result.stderr
