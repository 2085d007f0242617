"""SIGINT and SIGTERM turned into exceptions, so every `finally` runs and nothing half-written stays behind."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_deferred: list[int] | None = None  # inside `critical()`: the signals that arrived, raised when it ends


class Interrupted(BaseException):
    """The command was stopped by a signal; its temporary files and folders have been removed. Like
    KeyboardInterrupt it is no Exception, so that no `except Exception` on the way mistakes it for a failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}; nothing half-written was left behind")
        self.exit_code = 128 + signum


def _raise(signum: int, frame: FrameType | None) -> None:
    if _deferred is not None:
        _deferred.append(signum)
        return
    for other in SIGNALS:  # one interruption at a time: the cleanup it triggers is not cut short
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """While the block runs (in the main thread), SIGINT and SIGTERM raise `Interrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: list[Any] = [signal.signal(s, _raise) for s in SIGNALS]
    try:
        yield
    finally:
        for s, handler in zip(SIGNALS, previous):
            signal.signal(s, handler)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block (renames that must not be cut in half) runs."""
    global _deferred
    if _deferred is not None:
        yield
        return
    _deferred = []
    try:
        yield
    finally:
        arrived, _deferred = _deferred, None
    if arrived:
        _raise(arrived[0], None)
