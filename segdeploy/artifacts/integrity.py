"""Every reader of an export checks that the files it uses are the ones its manifest describes."""

from __future__ import annotations

from pathlib import Path

from ..errors import SegdeployError
from ..files import sha256_of
from .manifest import NAME, read_manifest


def _check(path: Path, expected: str, manifest: Path) -> None:
    if sha256_of(path) != expected.lower():
        raise SegdeployError(
            f"{path}: sha256 differs from the one {manifest} records; the file changed after the export "
            "(export again with --force)"
        )


def verify_artifact(path: Path) -> None:
    """Refuse `path` when the manifest.json beside it records another sha256 for it (a file changed or
    replaced after the export), or when that manifest is malformed; files no manifest lists are not
    checked."""
    manifest = path.parent / NAME
    if path.name == NAME or not manifest.is_file():
        return
    entry = read_manifest(path.parent)["artifacts"].get(path.name)
    if entry is not None and path.is_file():
        _check(path, entry["sha256"], manifest)


def verify_export(directory: Path) -> None:
    """Check every file the export folder's manifest lists (the manifest is read once)."""
    manifest = directory / NAME
    for name, entry in read_manifest(directory)["artifacts"].items():
        path = directory / name
        if not path.is_file():
            raise SegdeployError(f"{path}: listed in {manifest} but missing")
        if path.name != NAME:
            _check(path, entry["sha256"], manifest)
