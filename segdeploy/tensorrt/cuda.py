"""CUDA through pycuda: the device's primary context, its facts, and CUDA-graph replay of an enqueue.

pycuda has no stream-capture API, so graph capture calls the CUDA driver (libcuda) directly with ctypes:
cuStreamBeginCapture_v2 (CUDA >= 10.1), cuStreamEndCapture, cuGraphInstantiateWithFlags (>= 11.4, so
JetPack 5's CUDA 11.4 has it) and cuGraphLaunch.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import pycuda.driver as cuda

from ..errors import SegdeployError
from .sidecar import GpuFacts

_CAPTURE_MODE_THREAD_LOCAL = 1  # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, as trtexec captures


class CudaContext:
    """The primary context of one GPU, made current; shared with PyTorch in the same process."""

    def __init__(self, device: int = 0) -> None:
        cuda.init()
        if not 0 <= device < cuda.Device.count():
            raise SegdeployError(f"CUDA device {device}: this machine has {cuda.Device.count()} GPU(s)")
        self.device = cuda.Device(device)
        self.context = self.device.retain_primary_context()
        self.context.push()
        major, minor = self.device.compute_capability()
        self.gpu = GpuFacts(self.device.name(), f"{major}.{minor}", self.device.total_memory() >> 20)

    def close(self) -> None:
        self.context.pop()


def _driver() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise SegdeployError(f"CUDA graphs: cannot load the CUDA driver library ({exc})") from None


def _check(code: int, call: str) -> None:
    if code != 0:
        raise SegdeployError(f"CUDA graphs: {call} failed with CUresult {code}")


class CudaGraph:
    """One captured enqueue on one stream, replayed with a single launch. Valid only for the shapes and
    buffer addresses it was captured with: capture again after either changes."""

    def __init__(self, stream: cuda.Stream, enqueue: Callable[[], bool]) -> None:
        self.lib = _driver()
        self.stream = ctypes.c_void_p(stream.handle)
        self.exec = ctypes.c_void_p()
        _check(self.lib.cuStreamBeginCapture_v2(self.stream, _CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture")
        graph = ctypes.c_void_p()
        enqueued = False
        try:
            enqueued = enqueue()
        finally:  # end the capture whatever happened, or the stream stays unusable
            ended = self.lib.cuStreamEndCapture(self.stream, ctypes.byref(graph))
            if not (enqueued and ended == 0) and graph.value:
                self.lib.cuGraphDestroy(graph)
        _check(ended, "cuStreamEndCapture")
        if not enqueued:
            raise SegdeployError("CUDA graphs: the engine's enqueue failed during capture")
        code = self.lib.cuGraphInstantiateWithFlags(ctypes.byref(self.exec), graph, ctypes.c_ulonglong(0))
        self.lib.cuGraphDestroy(graph)
        _check(code, "cuGraphInstantiateWithFlags")

    def launch(self) -> None:
        _check(self.lib.cuGraphLaunch(self.exec, self.stream), "cuGraphLaunch")

    def close(self) -> None:
        if self.exec.value:
            self.lib.cuGraphExecDestroy(self.exec)
            self.exec = ctypes.c_void_p()
