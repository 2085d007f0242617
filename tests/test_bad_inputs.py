"""Every row of the bad-input catalogue (tests/bad_inputs.py): the expected one-line message and exit
code, no traceback, nothing written beyond what the row allows, the temp dir left clean."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from segdeploy.cli import app
from segdeploy.errors import SegdeployError

from .bad_inputs import CASES, PY_CASES, Case


def _merged(base: dict[str, Any], changes: dict[str, Any], tmp: Path) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value, tmp)
        else:
            merged[key] = json.loads(json.dumps(value).replace("{tmp}", str(tmp)))
    return merged


def _prepare(case: Case, world: dict[str, Path], tmp: Path) -> dict[str, Path]:
    ctx = {**world, "tmp": tmp, "missing": tmp / "none.onnx", "tampered": tmp / "x" / "model.onnx"}
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            content(path, ctx)
    if case.data is not None:
        base = yaml.safe_load(world["data"].read_text())
        base["root"] = str(world["data"].parent)
        ctx["bad_data"] = tmp / "bad_data.yaml"
        ctx["bad_data"].write_text(yaml.safe_dump(_merged(base, case.data, tmp)))
    if case.recipe is not None:
        ctx["bad_recipe"] = tmp / "bad_recipe.yaml"
        ctx["bad_recipe"].write_text(
            yaml.safe_dump(_merged(yaml.safe_load(world["recipe"].read_text()), case.recipe, tmp))
        )
    return ctx


def _restore(world: dict[str, Path], before: dict[Path, tuple[int, int]]) -> None:
    """Put back a shared input a failing row changed, so that no other row fails because of it."""
    pristine = world["exp"].parent / "pristine"
    for shared in (world["data"].parent, world["exp"], world["calib"]):
        if _snapshot([shared]) != {p: v for p, v in before.items() if p == shared or p.is_relative_to(shared)}:
            shutil.rmtree(shared)
            shutil.copytree(pristine / shared.name, shared)


def _snapshot(roots: list[Path]) -> dict[Path, tuple[int, int]]:
    return {p: (p.lstat().st_size, p.lstat().st_mtime_ns) for root in roots for p in [root, *root.rglob("*")]}


def _allowed(path: Path, tmp: Path, writes: tuple[str, ...]) -> bool:
    if not path.is_relative_to(tmp):
        return False
    relative = path.relative_to(tmp).as_posix()
    return any(relative == w or relative.startswith(w + "/") for w in writes)


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_the_catalogue_is_large_and_unique():
    assert len(CASES) >= 130
    assert len({case.name for case in CASES}) == len(CASES)
    assert {c.command[3:] for c in CASES if c.command.startswith("py:")} == set(PY_CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.requires and importlib.util.find_spec(case.requires) is None:
        pytest.skip(f"{case.requires} is not installed (an optional extra)")
    if case.permissions and os.geteuid() == 0:
        pytest.skip("runs as root, which file permissions do not stop")
    tmp, scratch = tmp_path / "work", tmp_path / "tmpdir"
    tmp.mkdir()
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp)
    ctx = _prepare(case, world, tmp)
    roots = [tmp, world["data"].parent, world["exp"], world["calib"]]
    before = _snapshot(roots)
    try:
        _run(case, ctx)
    finally:
        after = _snapshot(roots)
        _restore(world, before)
    changed = sorted(p for p in after if before.get(p) != after[p] and not (p.is_dir() and p in before))
    changed = [p for p in changed if not _allowed(p, tmp, case.writes)]
    removed = sorted(p for p in set(before) - set(after) if not _allowed(p, tmp, case.writes))
    assert not changed and not removed, f"written: {changed[:5]}, removed: {removed[:5]}"
    assert not list(scratch.iterdir()), f"left in the temp dir: {list(scratch.iterdir())}"


def _run(case: Case, ctx: dict[str, Path]) -> None:
    """Run the row's command and check its exit code and message."""
    if case.command.startswith("py:"):
        with pytest.raises(SegdeployError) as raised:
            PY_CASES[case.command[3:]](ctx)
        assert case.fragment in str(raised.value) and "\n" not in str(raised.value), str(raised.value)
        assert raised.value.exit_code == case.exit_code
    else:
        args = shlex.split(case.command.format(**{k: str(v) for k, v in ctx.items()}))
        result = CliRunner().invoke(app, args)
        stderr = result.stderr.strip()
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output + stderr
        assert result.exit_code == case.exit_code, f"exit {result.exit_code}: {stderr or result.stdout[-2000:]}"
        if case.exit_code == 0:
            assert _squeezed(case.fragment) in _squeezed(result.stdout), result.stdout[-3000:]
        elif case.exit_code == 1:  # a measured failure: one line per failing check
            assert stderr and all(line.startswith("parity: ") for line in stderr.splitlines()), stderr
            assert case.fragment in stderr, stderr
        else:
            assert len(stderr.splitlines()) == 1 and case.fragment in stderr, stderr
