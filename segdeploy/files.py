"""Safe artifact writing: temporary name, then rename; never overwrite without force."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import SegdeployError
from .interrupts import critical


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_overwrite(paths: list[Path], force: bool) -> None:
    """Fail before any work when an artifact would be overwritten without --force."""
    for path in paths:
        if path.is_dir():
            raise SegdeployError(f"{path}: is a folder, expected a file name")
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise SegdeployError(f"{existing[0]}: already exists; pass --force to overwrite it")


def require_folder(path: Path) -> None:
    """Fail before any work when an output folder's path is taken by something else."""
    if path.exists() and not path.is_dir():
        raise SegdeployError(f"{path}: exists and is not a folder; choose another --out")


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A fresh hidden folder beside `target`; removed, with parents this made, unless the block moved it."""
    require_folder(target)
    made = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
    except SegdeployError as exc:  # name the real artifact, not the staging folder that is about to go
        exc.args = (str(exc).replace(str(staging), str(target)),)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in made:
            with contextlib.suppress(OSError):
                parent.rmdir()


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)  # type: ignore[arg-type]
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


@contextlib.contextmanager
def staged_folder(target: Path, replaced: Callable[[Path], set[str]] = lambda _: set()) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; if the block succeeds it becomes `target` in one
    rename. An existing `target` is swapped out whole (the caller checked --force): its entries that the
    staging folder does not hold and `replaced(target)` does not name are carried over. On any failure
    or interruption `target` is untouched and the staging folder is removed."""
    with _staging(target) as staging:
        yield staging
        if target.exists():
            for entry in target.iterdir():
                if not (staging / entry.name).exists() and entry.name not in replaced(target):
                    _link_or_copy(entry, staging / entry.name)
        with critical():
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.replace(target, old / target.name)
                os.replace(staging, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, target)


@contextlib.contextmanager
def staged_files(target: Path) -> Iterator[Path]:
    """Yield a staging folder beside the folder `target`; if the block succeeds, every file written
    under it moves to the same place under `target`, all at once; on failure none does."""
    with _staging(target) as staging:
        yield staging
        files = sorted(p for p in staging.rglob("*") if not p.is_dir())
        with critical():
            for path in files:
                destination = target / path.relative_to(staging)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, destination)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; artifacts get the usual permissions
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(target: Path, writer: Callable[[Path], object]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def finite(payload: Any) -> Any:
    """`payload` with every NaN or infinity replaced by None: JSON has no such numbers."""
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, dict):
        return {key: finite(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(value) for value in payload]
    return payload


def write_json(target: Path, payload: Any) -> Path:
    text = json.dumps(finite(payload), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return write_atomic(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or one line saying why it cannot be read (`what`: the kind of file)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SegdeployError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SegdeployError(f"{path}: is a folder, expected a {what} file") from None
    except UnicodeDecodeError as exc:
        raise SegdeployError(f"{path}: not a UTF-8 {what} file (byte {exc.start} cannot be decoded)") from None
    except OSError as exc:
        raise SegdeployError(f"{path}: not readable ({exc.strerror})") from None


def read_json(path: Path) -> Any:
    text = read_text(path, "JSON")
    try:
        return json.loads(text, parse_constant=lambda name: None)  # a bare NaN/Infinity reads as null
    except ValueError as exc:
        raise SegdeployError(f"{path}: not readable JSON ({exc})") from None
