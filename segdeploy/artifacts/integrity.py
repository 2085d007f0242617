"""Every reader of an export checks that the files it uses are the ones its manifest describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SegdeployError
from ..files import read_json, sha256_of
from .manifest import NAME


def _recorded(manifest: Any) -> dict[str, str]:
    """File name -> sha256 for every artifact the manifest lists with one (malformed entries ignored)."""
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    entries = artifacts.items() if isinstance(artifacts, dict) else []
    return {
        str(name): entry["sha256"]
        for name, entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def _check(path: Path, expected: str, manifest: Path) -> None:
    if sha256_of(path) != expected:
        raise SegdeployError(
            f"{path}: sha256 differs from the one {manifest} records; the file changed after the export "
            "(export again with --force)"
        )


def verify_artifact(path: Path) -> None:
    """Refuse `path` when the manifest.json beside it records another sha256 for it (a file changed or
    replaced after the export); files no manifest lists are not checked."""
    manifest = path.parent / NAME
    if path.name == NAME or not manifest.is_file():
        return
    expected = _recorded(read_json(manifest)).get(path.name)
    if expected is not None and path.is_file():
        _check(path, expected, manifest)


def verify_export(directory: Path) -> None:
    """Check every file the export folder's manifest lists (the manifest is read once)."""
    manifest = directory / NAME
    raw = read_json(manifest)
    artifacts = raw.get("artifacts") if isinstance(raw, dict) else None
    recorded = _recorded(raw)
    for name in artifacts if isinstance(artifacts, dict) else []:
        path = directory / str(name)
        if not path.is_file():
            raise SegdeployError(f"{path}: listed in {manifest} but missing")
        if path.name != NAME and path.name in recorded:
            _check(path, recorded[path.name], manifest)
