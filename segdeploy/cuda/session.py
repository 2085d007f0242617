"""`CudaSession`: one GPU's primary context and everything made in it, safe from any thread.

- The primary context is pushed on the CALLING thread around setup and around every call, and popped
  after: no thread is ever left with a context on its stack (pycuda aborts the process at exit when
  one is, "PyCUDA ERROR: The context stack was not empty upon module cleanup"), and an object opened
  on one thread can be called from another (ROS executors, camera callbacks).
- A re-entrant lock serialises threads calling one session; `current()` holds it, so a caller can make
  a sequence of calls (copy in, enqueue, copy out) atomic.
- close(), or leaving `with`, frees graphs, events, streams, pinned and device memory (the reverse of
  their creation) and releases the primary context; it is idempotent. A weakref finaliser does the
  same for a session nobody closed, at garbage collection or at interpreter exit.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaptureError, SegdeployError
from . import select
from .driver import Driver, GpuFacts


@dataclass
class _Owned:
    """What a session made, kept apart from the session so the finaliser does not keep it alive."""

    driver: Driver
    ordinal: int
    context: int
    lock: threading.RLock
    device: dict[int, int] = field(default_factory=dict)  # pointer -> bytes
    host: dict[int, np.ndarray] = field(default_factory=dict)  # address -> page-locked array
    streams: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    graphs: list[int] = field(default_factory=list)  # instantiated graphs
    closed: bool = False


def _release(owned: _Owned) -> None:
    """Free everything in `owned` (newest kind first), then release the primary context. Runs once."""
    with owned.lock:
        if owned.closed:
            return
        owned.closed = True
        driver = owned.driver
        driver.push(owned.context)
        try:
            for graph in reversed(owned.graphs):
                driver.graph_exec_destroy(graph)
            for event in reversed(owned.events):
                driver.event_destroy(event)
            for stream in reversed(owned.streams):
                driver.stream_destroy(stream)
            for host in owned.host.values():
                driver.host_free(host)
            for pointer in owned.device:
                driver.free(pointer)
        finally:
            driver.pop()
            driver.release_primary(owned.ordinal)


class CudaSession:
    def __init__(self, device: int = 0, driver: Driver | None = None) -> None:
        driver = driver or select.load_driver()
        driver.init()
        count = driver.device_count()
        if not 0 <= device < count:
            raise SegdeployError(f"CUDA device {device}: this machine has {count} GPU(s)")
        self.gpu: GpuFacts = driver.gpu(device)
        self.driver = driver
        self.owned = _Owned(driver, device, driver.retain_primary(device), threading.RLock())
        self._finalizer = weakref.finalize(self, _release, self.owned)

    @contextmanager
    def current(self) -> Iterator[Driver]:
        """The primary context current on this thread, and this session's lock held, for the block."""
        owned = self.owned
        with owned.lock:
            if owned.closed:
                raise SegdeployError(f"CUDA session on GPU {owned.ordinal} ({self.gpu.name}) is closed")
            owned.driver.push(owned.context)
            try:
                yield owned.driver
            finally:
                owned.driver.pop()

    def close(self) -> None:
        """Free everything this session made and release the context; later calls do nothing."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self.owned.closed

    def __enter__(self) -> CudaSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- memory -----------------------------------------------------------------------------------

    def alloc(self, nbytes: int) -> int:
        with self.current() as driver:
            pointer = driver.alloc(max(nbytes, 1))
            self.owned.device[pointer] = nbytes
            return pointer

    def free(self, pointer: int) -> None:
        with self.current() as driver:
            del self.owned.device[pointer]
            driver.free(pointer)

    def host(self, nbytes: int, dtype: np.dtype[np.generic]) -> np.ndarray:
        """A page-locked 1-D array of `dtype` with room for `nbytes` bytes."""
        with self.current() as driver:
            raw = driver.host_alloc(max(nbytes, dtype.itemsize))
            self.owned.host[raw.ctypes.data] = raw
            return raw[: nbytes - nbytes % dtype.itemsize].view(dtype)

    def host_free(self, host: np.ndarray) -> None:
        with self.current() as driver:
            driver.host_free(self.owned.host.pop(host.ctypes.data))

    def mem_get_info(self) -> tuple[int, int]:
        """(free, total) bytes of the device."""
        with self.current() as driver:
            return driver.mem_get_info()

    def _fits(self, pointer: int, host: np.ndarray, call: str) -> None:
        size = self.owned.device.get(pointer)
        if size is None:
            raise SegdeployError(f"CUDA: {call} to {pointer:#x}, which this session did not allocate")
        if not host.flags.c_contiguous or host.nbytes > size:
            raise SegdeployError(f"CUDA: {call} of {host.nbytes} bytes into {size} (contiguous host arrays only)")

    def copy_htod(self, pointer: int, host: np.ndarray, stream: int) -> None:
        with self.current() as driver:
            self._fits(pointer, host, "host-to-device copy")
            driver.copy_htod(pointer, host, stream)

    def copy_dtoh(self, host: np.ndarray, pointer: int, stream: int) -> None:
        with self.current() as driver:
            self._fits(pointer, host, "device-to-host copy")
            driver.copy_dtoh(host, pointer, stream)

    # --- streams, events, graphs ------------------------------------------------------------------

    def stream(self) -> int:
        with self.current() as driver:
            stream = driver.stream_create()
            self.owned.streams.append(stream)
            return stream

    def synchronize(self, stream: int) -> None:
        with self.current() as driver:
            driver.stream_synchronize(stream)

    def event(self) -> int:
        with self.current() as driver:
            event = driver.event_create()
            self.owned.events.append(event)
            return event

    def record(self, event: int, stream: int) -> None:
        with self.current() as driver:
            driver.event_record(event, stream)

    def elapsed_ms(self, start: int, end: int) -> float:
        with self.current() as driver:
            return driver.elapsed_ms(start, end)

    def capture(self, stream: int, work: Callable[[], bool]) -> int:
        """Capture what `work` enqueues on `stream` into an instantiated graph. The capture is always
        ended, whatever `work` does; CaptureError when `work` returns False or the capture is
        invalidated (a synchronising plugin, data-dependent shapes)."""
        with self.current() as driver:
            driver.begin_capture(stream)
            try:
                done = work()
            except BaseException:
                graph = driver.end_capture(stream)  # end it, or the stream stays in capture mode
                if graph:
                    driver.graph_destroy(graph)
                raise
            graph = driver.end_capture(stream)
            if not (done and graph):
                if graph:
                    driver.graph_destroy(graph)
                raise CaptureError("the enqueue failed during capture" if not done else "the capture was invalidated")
            try:
                graph_exec = driver.instantiate(graph)
            finally:
                driver.graph_destroy(graph)
            self.owned.graphs.append(graph_exec)
            return graph_exec

    def launch(self, graph_exec: int, stream: int) -> None:
        with self.current() as driver:
            driver.graph_launch(graph_exec, stream)

    def drop_graphs(self) -> None:
        """Destroy every instantiated graph (before releasing what they use: TensorRT contexts, memory)."""
        with self.current() as driver:
            while self.owned.graphs:
                driver.graph_exec_destroy(self.owned.graphs.pop())

    def drop_graph(self, graph_exec: int) -> None:
        with self.current() as driver:
            self.owned.graphs.remove(graph_exec)
            driver.graph_exec_destroy(graph_exec)
