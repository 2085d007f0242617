"""Safe artifact writing: temporary name, then rename; never overwrite without force."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import SegdeployError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_overwrite(paths: list[Path], force: bool) -> None:
    """Fail before any work when an artifact would be overwritten without --force."""
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise SegdeployError(f"{existing[0]}: already exists; pass --force to overwrite it")


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; artifacts get the usual permissions
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(target: Path, writer: Callable[[Path], object]) -> Path:
    with atomic_path(target) as tmp:
        writer(tmp)
    return target


def write_json(target: Path, payload: Any) -> Path:
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    return write_atomic(target, lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SegdeployError(f"{path}: file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SegdeployError(f"{path}: not readable JSON ({exc})") from None
