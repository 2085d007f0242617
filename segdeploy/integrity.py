"""Every reader of an export checks that the files it uses are the ones its manifest describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SegdeployError
from .files import read_json, sha256_of

MANIFEST = "manifest.json"


def _recorded(manifest: Any, name: str) -> str | None:
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    entry = artifacts.get(name) if isinstance(artifacts, dict) else None
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    return sha if isinstance(sha, str) else None


def verify_artifact(path: Path) -> None:
    """Refuse `path` when the manifest.json beside it records another sha256 for it (a file changed or
    replaced after the export); files no manifest lists are not checked."""
    manifest = path.parent / MANIFEST
    if path.name == MANIFEST or not manifest.is_file():
        return
    expected = _recorded(read_json(manifest), path.name)
    if expected is not None and path.is_file() and sha256_of(path) != expected:
        raise SegdeployError(
            f"{path}: sha256 differs from the one {manifest} records; the file changed after the export "
            "(export again with --force)"
        )


def verify_export(directory: Path) -> None:
    """Check every file the export folder's manifest lists."""
    manifest = read_json(directory / MANIFEST)
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    for name in artifacts if isinstance(artifacts, dict) else []:
        path = directory / str(name)
        if not path.is_file():
            raise SegdeployError(f"{path}: listed in {directory / MANIFEST} but missing")
        verify_artifact(path)
