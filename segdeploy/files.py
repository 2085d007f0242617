"""Safe artifact writing: temporary name, then rename; never overwrite without force."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
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
    if path.is_symlink() and not path.exists():
        raise SegdeployError(
            f"{path}: a dangling symbolic link (to {os.readlink(path)}); remove it or choose another --out"
        )
    if path.exists() and not path.is_dir():
        raise SegdeployError(f"{path}: exists and is not a folder; choose another --out")


def require_writable(folder: Path) -> None:
    """Fail before any work when files cannot be made in `folder` (a read-only mount, no permission, a
    file or a dangling link in the way), by making one there; folders the probe made are removed."""
    require_folder(folder)
    made: list[Path] = []
    try:
        made = _made_parents(folder)
        fd, probe = tempfile.mkstemp(prefix=".segdeploy-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:  # not naming the probe's own file: the folder is what the user chose
        raise SegdeployError(f"{folder}: cannot write it: {exc.strerror or exc}") from None
    finally:
        _remove_empty(made)


def unwritable(target: Path, exc: OSError) -> SegdeployError:
    """One line for a write the environment refused: read-only, full disk, no permission."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(target) else ""
    return SegdeployError(f"{target}: cannot write it: {exc.strerror or exc}{where}")


_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _writing(exc: OSError, folder: Path) -> bool:
    """Whether `exc` is a write into `folder` failing (not, say, an input that cannot be read)."""
    if exc.filename is None:
        return exc.errno in _ENVIRONMENT
    return exc.errno in _ENVIRONMENT or Path(os.fsdecode(exc.filename)).is_relative_to(folder)


def _made_parents(folder: Path) -> list[Path]:
    """Create `folder` with its missing parents; the ones made, deepest first (for removal on failure)."""
    made = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _lock_owner(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(lock.read_text())}"
    return "another process"


@contextlib.contextmanager
def exclusive(target: Path, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the writer's lock of `target` while the block runs (`.NAME.lock` beside it, flock'ed, removed
    at the end; made with any missing parents, which are removed again if still empty). A second process
    writing the same target is refused in one line. Under the lock, staging folders a killed run left
    beside `target` have no live owner: they are removed, and `log` says so."""
    lock = target.parent / f".{target.name}.lock"
    try:  # also the writability probe: before the work, not after it
        made = _made_parents(target.parent)
        fd = _locked(lock, target)
    except OSError as exc:
        raise unwritable(target, exc) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _clear_leftovers(target, log)
        yield
    finally:
        os.unlink(lock)  # before the unlock: a process that opened the old file sees the inode change
        os.close(fd)
        _remove_empty(made)


def _locked(lock: Path, target: Path) -> int:
    """An open descriptor of `lock`, flock'ed; refused in one line when another process holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SegdeployError(
                f"{target}: {_lock_owner(lock)} is writing it now; wait for it to end or choose another --out"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd  # else the holder before us removed the file after we opened it: lock the new one
        os.close(fd)


def _clear_leftovers(target: Path, log: Callable[[str], None]) -> None:
    """Remove the staging folders of runs into `target` that were killed (SIGKILL, the OOM killer); the
    caller holds the writer's lock, so no live process owns them. A run killed in the middle of its
    final swap left the old `target` in an `.old-` folder: it is put back first."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(staging|old)-\w+")
    for stale in sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name) and p.is_dir()):
        kept = stale / target.name
        if stale.name.startswith(f".{target.name}.old-") and kept.exists() and not target.exists():
            os.replace(kept, target)
            log(f"put back {target} from {stale}, left by a run killed while replacing it")
        shutil.rmtree(stale, ignore_errors=True)
        log(f"removed {stale}, left by a run that was killed before it finished")


def followed(target: Path) -> Path:
    """`target`, or where it points when it is a symbolic link: an output written through a link goes
    into the folder the link names (staged beside that folder, on its disk), and the link is kept."""
    require_folder(target)
    return target.resolve() if target.is_symlink() else target


@contextlib.contextmanager
def _staging(target: Path, log: Callable[[str], None], refuse: Callable[[], None]) -> Iterator[Path]:
    """A fresh hidden folder beside `target`, under its writer's lock; removed, with parents this made,
    unless the block moved it. `refuse` runs once the lock is held: the caller's check for outputs
    that must not be overwritten, made again now that no other writer can finish in between."""
    with exclusive(target, log):
        refuse()
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        with _removed_unless_moved(staging, target):
            yield staging


@contextlib.contextmanager
def _removed_unless_moved(staging: Path, target: Path) -> Iterator[None]:
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield
    except SegdeployError as exc:  # name the real artifact, not the staging folder that is about to go
        exc.args = (str(exc).replace(str(staging), str(target)),)
        raise
    except OSError as exc:  # a full disk, a read-only mount: found at write time
        if not _writing(exc, target.parent):
            raise
        raise SegdeployError(str(unwritable(target, exc)).replace(str(staging), str(target))) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)  # type: ignore[arg-type]
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


@contextlib.contextmanager
def staged_folder(
    target: Path,
    replaced: Callable[[Path], set[str]] = lambda _: set(),
    log: Callable[[str], None] = print,
    refuse: Callable[[], None] = lambda: None,
) -> Iterator[Path]:
    """Yield an empty staging folder beside `target` (the folder a symbolic link names: `followed`); if
    the block succeeds it becomes `target` in one rename. An existing `target` is swapped out whole (the
    caller checked --force, and `refuse` checks it again under the writer's lock): its entries that the
    staging folder does not hold and `replaced(target)` does not name are carried over. On any failure
    or interruption `target` is untouched and the staging folder is removed."""
    target = followed(target)
    with _staging(target, log, refuse) as staging:
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
def staged_files(
    target: Path, log: Callable[[str], None] = print, refuse: Callable[[], None] = lambda: None
) -> Iterator[Path]:
    """Yield a staging folder beside the folder `target` (the folder a symbolic link names); if the
    block succeeds, every file written under it moves to the same place under `target`, all at once; on
    failure none does. `refuse` runs under the writer's lock, as for `staged_folder`."""
    target = followed(target)
    with _staging(target, log, refuse) as staging:
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
    try:
        made = _made_parents(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise unwritable(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    done = False
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; artifacts get the usual permissions
        os.replace(tmp, target)
        done = True
    except OSError as exc:  # a full disk, a read-only mount: one line, and no empty folders left
        if not _writing(exc, target.parent):
            raise
        raise unwritable(target, exc) from None
    finally:
        if tmp.exists():
            tmp.unlink()
        if not done:
            _remove_empty(made)


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
