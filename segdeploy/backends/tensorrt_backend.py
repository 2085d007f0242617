"""TensorRT backend: an engine built by `segdeploy build`, run with pycuda on one CUDA stream.

Page-locked host buffers and device buffers are allocated once and grown only for a larger shape;
tensor addresses are bound with set_tensor_address and the engine runs with execute_async_v3
(TensorRT >= 8.5). Input shapes are set per call for dynamic engines. With `cuda_graph`, the
enqueue is captured for the current input shape and replayed until the shape changes. Timings of
host-to-device copy, compute and device-to-host copy come from CUDA events. Imports tensorrt and pycuda:
open it through `open_backend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

from ..errors import SegdeployError
from ..meta import AcceptedShapes
from ..tensorrt.cuda import CudaContext, CudaGraph
from ..tensorrt.sidecar import check_loadable, read_engine_manifest
from ..tensorrt.types import dims_list
from .base import BackendBase, MemoryUse
from .options import BackendOptions, cuda_index

_LOGGER = trt.Logger(trt.Logger.WARNING)


class _Buffer:
    """A page-locked host array and a device allocation of the same capacity, grown on demand."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.capacity = 0
        self.host: np.ndarray = np.empty(0, dtype)
        self.device: cuda.DeviceAllocation | None = None

    def fit(self, count: int) -> bool:
        """Make room for `count` elements; True when the device address changed."""
        if count <= self.capacity:
            return False
        if self.device is not None:
            self.device.free()
        self.host = cuda.pagelocked_empty(count, self.dtype)
        self.device = cuda.mem_alloc(count * self.dtype.itemsize)
        self.capacity = count
        return True

    @property
    def address(self) -> int:
        assert self.device is not None
        return int(self.device)


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    def __init__(self, path: Path, device: int = 0, cuda_graph: bool = False) -> None:
        self.path = path
        self.manifest = read_engine_manifest(path)
        self.meta, self.precision = self.manifest.meta, self.manifest.precision
        self.label = path.name + (" [cuda graph]" if cuda_graph else "")
        self.cuda = CudaContext(device)
        try:
            data = path.read_bytes()
            check_loadable(self.manifest, path, data, trt.__version__, self.cuda.gpu)
            self.runtime = trt.Runtime(_LOGGER)
            self.engine = self.runtime.deserialize_cuda_engine(data)
            if self.engine is None:
                raise SegdeployError(
                    f"{path}: TensorRT could not deserialize the engine; rebuild it with 'segdeploy build'"
                )
            self.context = self.engine.create_execution_context()
        except BaseException:
            self.cuda.close()  # leave no context pushed behind a failed load
            raise
        self.stream = cuda.Stream()
        self.events = [cuda.Event() for _ in range(4)]
        self.input_name, self.output_name = self.manifest.input.name, self.manifest.output.name
        self.inputs = _Buffer(np.dtype(self.manifest.input.dtype))
        self.outputs = _Buffer(np.dtype(self.manifest.output.dtype))
        self.cuda_graph = cuda_graph
        self.graph: CudaGraph | None = None
        self.shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] = ()

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> TensorRTBackend:
        return cls(path, device=cuda_index(options.device), cuda_graph=options.cuda_graph)

    def settings(self) -> dict[str, Any]:
        return {
            "tensorrt": trt.__version__,
            "gpu": self.cuda.gpu.to_dict(),
            "build": self.manifest.raw["build"],
            "cuda_graph": self.cuda_graph,
        }

    def accepted_shapes(self) -> AcceptedShapes:
        """The engine's optimisation profile."""
        profile = self.manifest.profile
        return AcceptedShapes.of_input(self.meta.io, profile.min, profile.max)

    def memory(self) -> MemoryUse:
        """Page-locked I/O buffers on the host; the engine's activation memory and I/O buffers on the device."""
        buffers = (
            self.inputs.capacity * self.inputs.dtype.itemsize + self.outputs.capacity * self.outputs.dtype.itemsize
        )
        return {"host_bytes": buffers, "device_bytes": self._activation_bytes() + buffers}

    def _activation_bytes(self) -> int:
        # device_memory_size_v2 from TensorRT 10.1; device_memory_size was removed in 11.
        if hasattr(self.engine, "device_memory_size_v2"):
            return int(self.engine.device_memory_size_v2)
        return int(self.engine.device_memory_size)

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.meta.feed(frames), dtype=self.inputs.dtype)

    def _bind(self, shape: tuple[int, ...]) -> None:
        problems = self.manifest.profile.problems(shape)
        if problems:
            raise SegdeployError(
                f"{self.path}: input shape {shape} does not fit the engine's profile ({'; '.join(problems)})"
            )
        if not self.context.set_input_shape(self.input_name, shape):
            raise SegdeployError(f"{self.path}: TensorRT refused input shape {shape}")
        self.output_shape = tuple(dims_list(self.context.get_tensor_shape(self.output_name)))
        self.inputs.fit(int(np.prod(shape)))
        self.outputs.fit(int(np.prod(self.output_shape)))
        # A captured graph holds the old shape's work and addresses: capture again for this shape.
        self._drop_graph()
        for name, buffer in ((self.input_name, self.inputs), (self.output_name, self.outputs)):
            if not self.context.set_tensor_address(name, buffer.address):
                raise SegdeployError(f"{self.path}: TensorRT refused the address of tensor '{name}'")
        self.shape = shape

    def _enqueue(self) -> bool:
        return self.context.execute_async_v3(self.stream.handle)

    def _execute(self) -> None:
        if self.cuda_graph and self.graph is not None:
            self.graph.launch()
            return
        # Also the first call after a shape change with CUDA graphs: an enqueue outside capture lets
        # TensorRT finish shape-dependent setup, which cannot happen inside a capture.
        if not self._enqueue():
            raise SegdeployError(f"{self.path}: TensorRT failed to enqueue inference")
        if self.cuda_graph:
            self.stream.synchronize()
            self.graph = CudaGraph(self.stream, self._enqueue)

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        shape = tuple(int(d) for d in feed.shape)
        if shape != self.shape:
            self._bind(shape)
        host_in = self.inputs.host[: feed.size].reshape(shape)
        np.copyto(host_in, feed)
        host_out = self.outputs.host[: int(np.prod(self.output_shape))].reshape(self.output_shape)
        start, copied_in, computed, copied_out = self.events
        start.record(self.stream)
        cuda.memcpy_htod_async(self.inputs.address, host_in, self.stream)
        copied_in.record(self.stream)
        self._execute()
        computed.record(self.stream)
        cuda.memcpy_dtoh_async(host_out, self.outputs.address, self.stream)
        copied_out.record(self.stream)
        self.stream.synchronize()
        self.stages = {
            "h2d": copied_in.time_since(start),
            "compute": computed.time_since(copied_in),
            "d2h": copied_out.time_since(computed),
        }
        result: np.ndarray = host_out.copy()
        return result

    def _drop_graph(self) -> None:
        if self.graph is not None:
            self.graph.close()
            self.graph = None

    def _release(self) -> None:
        """Free graph, buffers and TensorRT objects (context, engine, runtime, in that order), then
        release the CUDA context."""
        self._drop_graph()
        for buffer in (self.inputs, self.outputs):
            if buffer.device is not None:
                buffer.device.free()
                buffer.device = None
        del self.context, self.engine, self.runtime
        self.cuda.close()
