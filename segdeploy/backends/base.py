"""The backend protocol every backend implements, and the base class that gives each the same checks,
closing and context-manager use."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict, TypeVar, runtime_checkable

import numpy as np

from ..errors import SegdeployError
from ..meta import AcceptedShapes, ModelMeta


class Timings(TypedDict):
    """Milliseconds of the last run per stage: host preprocessing, host-to-device copy, compute and
    device-to-host copy."""

    prepare: float
    h2d: float
    compute: float
    d2h: float


DEVICE_STAGES: tuple[Literal["h2d", "compute", "d2h"], ...] = ("h2d", "compute", "d2h")


class MemoryUse(TypedDict):
    """Bytes a backend holds on the host (weights, I/O buffers) and on the device (None: not measurable)."""

    host_bytes: int
    device_bytes: int | None


class ClosedError(SegdeployError):
    """A backend used after close()."""


@runtime_checkable
class Backend(Protocol):
    """Runs one artifact. `run(frames)` takes uint8 frames (N, H, W, 3) and returns float32 logits
    (N, C, H, W), or int32 class maps (N, H, W) when the artifact ends in an argmax (meta.io.argmax).
    `run` is `infer(prepare(frames))`: `prepare` is the host-side preprocessing (it refuses frames
    outside `accepted_shapes()` before anything runs), `infer` the rest, which bench times separately.
    `close()` frees what the backend holds; it is idempotent, and any other use after it is an error.
    Use it as a context manager: `with open_backend(path) as backend: ...`."""

    name: str  # the engine: "pytorch", "onnxruntime", "openvino", "tensorrt"
    label: str  # which artifact (and variant), for tables
    precision: str  # what ran: "fp32", "fp16", "int8", "bf16"
    meta: ModelMeta

    @property
    def choice(self) -> str: ...

    def prepare(self, frames: np.ndarray) -> Any: ...

    def infer(self, feed: Any) -> np.ndarray: ...

    def run(self, frames: np.ndarray) -> np.ndarray: ...

    def settings(self) -> dict[str, Any]: ...

    def timings(self) -> Timings | None: ...

    def memory(self) -> MemoryUse: ...

    def accepted_shapes(self) -> AcceptedShapes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Backend: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...


B = TypeVar("B", bound="BackendBase")


class BackendBase(ABC):
    """What every backend shares: `prepare` checks the frames against `accepted_shapes()` and times
    itself, `run` is `infer(prepare(frames))`, `close()` calls `_release()` once, and every use after it
    fails with one line. A backend implements `_prepare`, `_infer`, `_release` and the rest of `Backend`."""

    name: str
    label: str
    precision: str
    meta: ModelMeta
    _closed = False
    _prepare_ms = 0.0
    stages: dict[str, float] = {}  # h2d/compute/d2h ms of the last run, where CUDA events time them (replaced whole)

    @abstractmethod
    def _prepare(self, frames: np.ndarray) -> Any: ...

    @abstractmethod
    def _infer(self, feed: Any) -> np.ndarray: ...

    @abstractmethod
    def _release(self) -> None: ...

    @abstractmethod
    def accepted_shapes(self) -> AcceptedShapes: ...

    def timings(self) -> Timings | None:
        """The stages of the last run, where the backend splits copies from compute (`stages`); else None."""
        if not self.stages:
            return None
        stages = self.stages
        return {"prepare": self._prepare_ms, "h2d": stages["h2d"], "compute": stages["compute"], "d2h": stages["d2h"]}

    @property
    def choice(self) -> str:
        """How `--backend` spells this backend (NAME[:PRECISION]), to open its artifact the same way again."""
        return self.name

    def check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{self.label}: this backend was closed; open the artifact again")

    def prepare(self, frames: np.ndarray) -> Any:
        self.check_open()
        self.accepted_shapes().check(frames, self.label)
        start = time.perf_counter_ns()
        feed = self._prepare(frames)
        self._prepare_ms = (time.perf_counter_ns() - start) / 1e6
        return feed

    def infer(self, feed: Any) -> np.ndarray:
        self.check_open()
        return self._infer(feed)

    def run(self, frames: np.ndarray) -> np.ndarray:
        output = self.infer(self.prepare(frames))
        self.meta.check_output(output, frames, self.label, self.ends_in_argmax)
        return output

    @property
    def ends_in_argmax(self) -> bool:
        """Whether `run` returns class maps (else logits): what the artifact's metadata says."""
        return self.meta.io.argmax

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self: B) -> B:
        self.check_open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
