"""The driver on pycuda (a source distribution: it needs nvcc, a C++ compiler and Python headers).

pycuda wraps contexts, memory, streams and events as objects (pycuda.driver documentation, "Devices and
Contexts", "Memory", "Streams and Events"); this driver keeps them by integer handle. pycuda has no
stream-capture API, so capture calls libcuda through ctypes with the documented signatures (cuda.h):
cuStreamBeginCapture_v2 (CUDA >= 10.1), cuStreamEndCapture, cuGraphInstantiateWithFlags (>= 11.4,
JetPack 5's CUDA), cuGraphLaunch, cuGraphDestroy, cuGraphExecDestroy; so does the release of the
primary context (cuDeviceGet, cuDevicePrimaryCtxRetain, cuCtxPopCurrent_v2, cuDevicePrimaryCtxRelease_v2:
the names cuda.h maps cuCtxPopCurrent and, from CUDA 11.0, cuDevicePrimaryCtxRelease to).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np
import pycuda.driver as cuda

from ..errors import SegdeployError
from .driver import GpuFacts
from .libcuda import load as _libcuda

_CAPTURE_MODE_THREAD_LOCAL = 1  # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, as trtexec captures
_CAPTURE_INVALIDATED = 901  # CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: the capture ended, no graph


def _check(code: int, call: str) -> None:
    if code != 0:
        raise SegdeployError(f"CUDA: {call} failed with CUresult {code}")


class PycudaDriver:
    name = "pycuda"

    def __init__(self) -> None:
        self.contexts: dict[int, cuda.Context] = {}
        self.owners: dict[int, int] = {}  # ordinal -> the thread that retained its context
        self.allocations: dict[int, cuda.DeviceAllocation] = {}
        self.streams: dict[int, cuda.Stream] = {}
        self.events: dict[int, cuda.Event] = {}
        self.lib: ctypes.CDLL | None = None

    def init(self) -> None:
        cuda.init()

    def device_count(self) -> int:
        return cuda.Device.count()

    def gpu(self, ordinal: int) -> GpuFacts:
        device = cuda.Device(ordinal)
        major, minor = device.compute_capability()
        return GpuFacts(device.name(), f"{major}.{minor}", device.total_memory() >> 20)

    def retain_primary(self, ordinal: int) -> int:
        self.contexts[ordinal] = cuda.Device(ordinal).retain_primary_context()
        self.owners[ordinal] = threading.get_ident()
        return ordinal

    def release_primary(self, ordinal: int) -> None:
        """Release the primary context and leave no context current, from any thread.

        pycuda's Context.detach() (src/cpp/cuda.hpp, context::detach and primary_context::detach_internal)
        pushes a context that is not current with cuCtxPushCurrent, calls cuDevicePrimaryCtxRelease and
        never pops; on a thread other than the one that retained it, it releases nothing and only marks
        the object invalid. detach() must still run, or pycuda's destructor detaches again. So: on the
        owning thread an extra retain keeps the context alive while its push is popped, on another thread
        the release is made here."""
        context, owner = self.contexts.pop(ordinal), self.owners.pop(ordinal)
        lib = self._lib()
        device = ctypes.c_int()
        _check(lib.cuDeviceGet(ctypes.byref(device), ordinal), "cuDeviceGet")
        if threading.get_ident() == owner:
            held = ctypes.c_void_p()
            _check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(held), device), "cuDevicePrimaryCtxRetain")
            context.detach()
            _check(lib.cuCtxPopCurrent_v2(ctypes.byref(ctypes.c_void_p())), "cuCtxPopCurrent_v2")
        else:
            context.detach()
        _check(lib.cuDevicePrimaryCtxRelease_v2(device), "cuDevicePrimaryCtxRelease_v2")

    def push(self, context: int) -> None:
        self.contexts[context].push()

    def pop(self) -> None:
        cuda.Context.pop()

    def mem_get_info(self) -> tuple[int, int]:
        return cuda.mem_get_info()

    def alloc(self, nbytes: int) -> int:
        allocation = cuda.mem_alloc(nbytes)
        self.allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        self.allocations.pop(pointer).free()

    def host_alloc(self, nbytes: int) -> np.ndarray:
        return cuda.pagelocked_empty(nbytes, np.uint8)

    def host_free(self, host: np.ndarray) -> None:
        base: Any = host.base
        if base is not None and hasattr(base, "free"):  # pycuda's HostAllocation
            base.free()

    def stream_create(self) -> int:
        stream = cuda.Stream()
        self.streams[stream.handle] = stream
        return stream.handle

    def stream_destroy(self, stream: int) -> None:
        del self.streams[stream]

    def stream_synchronize(self, stream: int) -> None:
        self.streams[stream].synchronize()

    def event_create(self) -> int:
        event = cuda.Event()
        self.events[id(event)] = event
        return id(event)

    def event_destroy(self, event: int) -> None:
        del self.events[event]

    def event_record(self, event: int, stream: int) -> None:
        self.events[event].record(self.streams[stream])

    def elapsed_ms(self, start: int, end: int) -> float:
        return self.events[end].time_since(self.events[start])

    def copy_htod(self, pointer: int, host: np.ndarray, stream: int) -> None:
        cuda.memcpy_htod_async(pointer, host, self.streams[stream])

    def copy_dtoh(self, host: np.ndarray, pointer: int, stream: int) -> None:
        cuda.memcpy_dtoh_async(host, pointer, self.streams[stream])

    def _lib(self) -> ctypes.CDLL:
        if self.lib is None:
            self.lib = _libcuda()
        return self.lib

    def begin_capture(self, stream: int) -> None:
        code = self._lib().cuStreamBeginCapture_v2(ctypes.c_void_p(stream), _CAPTURE_MODE_THREAD_LOCAL)
        _check(code, "cuStreamBeginCapture_v2")

    def end_capture(self, stream: int) -> int:
        graph = ctypes.c_void_p()
        code = self._lib().cuStreamEndCapture(ctypes.c_void_p(stream), ctypes.byref(graph))
        if code == _CAPTURE_INVALIDATED:
            return 0
        _check(code, "cuStreamEndCapture")
        return int(graph.value or 0)

    def instantiate(self, graph: int) -> int:
        graph_exec = ctypes.c_void_p()
        code = self._lib().cuGraphInstantiateWithFlags(
            ctypes.byref(graph_exec), ctypes.c_void_p(graph), ctypes.c_ulonglong(0)
        )
        _check(code, "cuGraphInstantiateWithFlags")
        return int(graph_exec.value or 0)

    def graph_destroy(self, graph: int) -> None:
        _check(self._lib().cuGraphDestroy(ctypes.c_void_p(graph)), "cuGraphDestroy")

    def graph_launch(self, graph_exec: int, stream: int) -> None:
        _check(self._lib().cuGraphLaunch(ctypes.c_void_p(graph_exec), ctypes.c_void_p(stream)), "cuGraphLaunch")

    def graph_exec_destroy(self, graph_exec: int) -> None:
        _check(self._lib().cuGraphExecDestroy(ctypes.c_void_p(graph_exec)), "cuGraphExecDestroy")
