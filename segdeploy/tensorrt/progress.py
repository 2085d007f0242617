"""The builder's nested phases, tracked for a progress bar (TensorRT >= 10 reports them through
IProgressMonitor). Pure Python: `build.py` forwards TensorRT's calls here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Phase:
    name: str
    parent: str | None
    steps: int
    done: int = 0


@dataclass
class PhaseTracker:
    """Keeps the open phases; `on_change(description, completed, total)` is called for the top phase.
    TensorRT calls its monitor from several builder threads, and an exception raised in step_complete
    cancels the build, so every call holds a lock."""

    on_change: Callable[[str, int, int], None]
    phases: dict[str, Phase] = field(default_factory=dict)
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, parent: str | None, steps: int) -> None:
        with self.lock:
            self.phases[name] = Phase(name, parent or None, steps)
            self._report(name)

    def step(self, name: str, step: int) -> bool:
        """Record a finished step; False asks TensorRT to cancel the build."""
        with self.lock:
            if name in self.phases:
                self.phases[name].done = step + 1
                self._report(name)
            return not self.cancelled

    def finish(self, name: str) -> None:
        with self.lock:
            phase = self.phases.pop(name, None)
            if phase is not None and phase.parent in self.phases:
                self._report(phase.parent)

    def _report(self, name: str) -> None:
        chain = [name]
        while (parent := self.phases[chain[-1]].parent) in self.phases and parent not in chain:
            chain.append(parent)
        top = self.phases[chain[-1]]
        self.on_change(" > ".join(reversed(chain)), top.done, max(top.steps, 1))
