"""The driver on NVIDIA's cuda-bindings (`pip install cuda-bindings`, imported as cuda.bindings.driver).

Every cuda.bindings.driver function returns a tuple whose first item is the CUresult and whose next
items are the outputs (cuda-bindings API reference, "driver" module); handles are built from and read
back as integers (CUstream(int), int(CUstream)). The calls and signatures used here exist in
cuda-bindings 12.x and 13.x alike: cuGraphInstantiate(hGraph, flags) is cuGraphInstantiateWithFlags
since CUDA 12.0.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from cuda.bindings import driver as cu

from ..errors import SegdeployError
from .driver import GpuFacts

_NAME_LENGTH = 256


def _ok(result: tuple[Any, ...], call: str) -> Any:
    """The call's single output (None when it has none), or one line naming the CUresult."""
    error = result[0]
    if error != cu.CUresult.CUDA_SUCCESS:
        name = cu.cuGetErrorName(error)[1]
        raise SegdeployError(f"CUDA: {call} failed ({name.decode() if isinstance(name, bytes) else error})")
    return result[1] if len(result) > 1 else None


class BindingsDriver:
    name = "cuda-bindings"

    def __init__(self) -> None:
        self.devices: dict[int, Any] = {}

    def init(self) -> None:
        _ok(cu.cuInit(0), "cuInit")

    def device_count(self) -> int:
        return int(_ok(cu.cuDeviceGetCount(), "cuDeviceGetCount"))

    def _device(self, ordinal: int) -> Any:
        if ordinal not in self.devices:
            self.devices[ordinal] = _ok(cu.cuDeviceGet(ordinal), "cuDeviceGet")
        return self.devices[ordinal]

    def gpu(self, ordinal: int) -> GpuFacts:
        device = self._device(ordinal)
        raw = _ok(cu.cuDeviceGetName(_NAME_LENGTH, device), "cuDeviceGetName")
        attribute = cu.CUdevice_attribute
        major = _ok(cu.cuDeviceGetAttribute(attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "cc")
        minor = _ok(cu.cuDeviceGetAttribute(attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "cc")
        total = int(_ok(cu.cuDeviceTotalMem(device), "cuDeviceTotalMem"))
        return GpuFacts(bytes(raw).split(b"\0")[0].decode(), f"{major}.{minor}", total >> 20)

    def retain_primary(self, ordinal: int) -> int:
        return int(_ok(cu.cuDevicePrimaryCtxRetain(self._device(ordinal)), "cuDevicePrimaryCtxRetain"))

    def release_primary(self, ordinal: int) -> None:
        _ok(cu.cuDevicePrimaryCtxRelease(self._device(ordinal)), "cuDevicePrimaryCtxRelease")

    def push(self, context: int) -> None:
        _ok(cu.cuCtxPushCurrent(cu.CUcontext(context)), "cuCtxPushCurrent")

    def pop(self) -> None:
        _ok(cu.cuCtxPopCurrent(), "cuCtxPopCurrent")

    def mem_get_info(self) -> tuple[int, int]:
        result = cu.cuMemGetInfo()
        _ok(result[:1], "cuMemGetInfo")
        return int(result[1]), int(result[2])

    def alloc(self, nbytes: int) -> int:
        return int(_ok(cu.cuMemAlloc(nbytes), "cuMemAlloc"))

    def free(self, pointer: int) -> None:
        _ok(cu.cuMemFree(cu.CUdeviceptr(pointer)), "cuMemFree")

    def host_alloc(self, nbytes: int) -> np.ndarray:
        address = int(_ok(cu.cuMemHostAlloc(nbytes, 0), "cuMemHostAlloc"))
        return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(address))

    def host_free(self, host: np.ndarray) -> None:
        _ok(cu.cuMemFreeHost(host.ctypes.data), "cuMemFreeHost")

    def stream_create(self) -> int:
        return int(_ok(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate"))

    def stream_destroy(self, stream: int) -> None:
        _ok(cu.cuStreamDestroy(cu.CUstream(stream)), "cuStreamDestroy")

    def stream_synchronize(self, stream: int) -> None:
        _ok(cu.cuStreamSynchronize(cu.CUstream(stream)), "cuStreamSynchronize")

    def event_create(self) -> int:
        return int(_ok(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate"))

    def event_destroy(self, event: int) -> None:
        _ok(cu.cuEventDestroy(cu.CUevent(event)), "cuEventDestroy")

    def event_record(self, event: int, stream: int) -> None:
        _ok(cu.cuEventRecord(cu.CUevent(event), cu.CUstream(stream)), "cuEventRecord")

    def elapsed_ms(self, start: int, end: int) -> float:
        return float(_ok(cu.cuEventElapsedTime(cu.CUevent(start), cu.CUevent(end)), "cuEventElapsedTime"))

    def copy_htod(self, pointer: int, host: np.ndarray, stream: int) -> None:
        call = cu.cuMemcpyHtoDAsync(cu.CUdeviceptr(pointer), host.ctypes.data, host.nbytes, cu.CUstream(stream))
        _ok(call, "cuMemcpyHtoDAsync")

    def copy_dtoh(self, host: np.ndarray, pointer: int, stream: int) -> None:
        call = cu.cuMemcpyDtoHAsync(host.ctypes.data, cu.CUdeviceptr(pointer), host.nbytes, cu.CUstream(stream))
        _ok(call, "cuMemcpyDtoHAsync")

    def begin_capture(self, stream: int) -> None:
        # Thread-local mode, as trtexec captures: other threads' CUDA calls are not checked against it.
        mode = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
        _ok(cu.cuStreamBeginCapture(cu.CUstream(stream), mode), "cuStreamBeginCapture")

    def end_capture(self, stream: int) -> int:
        result = cu.cuStreamEndCapture(cu.CUstream(stream))
        # An invalidated capture still ends: CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and a NULL graph.
        if result[0] == cu.CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
            return 0
        return int(_ok(result, "cuStreamEndCapture"))

    def instantiate(self, graph: int) -> int:
        return int(_ok(cu.cuGraphInstantiate(cu.CUgraph(graph), 0), "cuGraphInstantiate"))

    def graph_destroy(self, graph: int) -> None:
        _ok(cu.cuGraphDestroy(cu.CUgraph(graph)), "cuGraphDestroy")

    def graph_launch(self, graph_exec: int, stream: int) -> None:
        _ok(cu.cuGraphLaunch(cu.CUgraphExec(graph_exec), cu.CUstream(stream)), "cuGraphLaunch")

    def graph_exec_destroy(self, graph_exec: int) -> None:
        _ok(cu.cuGraphExecDestroy(cu.CUgraphExec(graph_exec)), "cuGraphExecDestroy")
