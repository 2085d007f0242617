"""TensorRT backend: an engine built by `segdeploy build`, run on one CUDA stream through segdeploy.cuda.

Page-locked host buffers and device buffers are allocated once and grown only for a larger shape;
tensor addresses are bound with set_tensor_address and the engine runs with execute_async_v3
(TensorRT >= 8.5). Input shapes are set per call for dynamic engines. With `cuda_graph`, the enqueue is
captured for the current input shape and replayed until the shape changes; when capture fails (data-
dependent shapes, a synchronising plugin) the backend says so in one line and enqueues plainly, as
trtexec does. Timings of host-to-device copy, compute and device-to-host copy come from CUDA events.

The CUDA context is current only inside a call, on the calling thread, so any thread may call; calls
from several threads are serialised by the session's lock. close() (or `with`) releases the execution
context, the engine and the runtime in that order with the context current, then the CUDA session; a
finaliser does the same for a backend nobody closed. Imports tensorrt: open it through `open_backend`.
"""

from __future__ import annotations

import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import tensorrt as trt

from ..cuda import CudaSession
from ..errors import CaptureError, SegdeployError
from ..meta import AcceptedShapes
from ..tensorrt.sidecar import check_loadable, read_engine_manifest
from ..tensorrt.types import dims_list
from .base import BackendBase, MemoryUse
from .options import BackendOptions, cuda_index

_LOGGER = trt.Logger(trt.Logger.WARNING)


class _Engine:
    """The runtime, engine and execution context of one backend, held only here and released newest
    first. A separate object, so the backend's finaliser can release them without the backend."""

    def __init__(self, path: Path, data: bytes, dla_core: int | None) -> None:
        self.runtime = trt.Runtime(_LOGGER)
        if dla_core is not None:
            self.runtime.DLA_core = dla_core  # IRuntime: set before deserializing an engine built for DLA
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise SegdeployError(
                f"{path}: TensorRT could not deserialize the engine; rebuild it with 'segdeploy build'"
            )
        self.context = self.engine.create_execution_context()

    def release(self) -> None:
        for name in ("context", "engine", "runtime"):
            self.__dict__.pop(name, None)


def _release(cuda: CudaSession, objects: _Engine) -> None:
    """Graphs first (they replay the context's work), then context, engine, runtime, then CUDA."""
    if not cuda.closed:
        with cuda.current():
            cuda.drop_graphs()
            objects.release()
    cuda.close()


class _Buffer:
    """A page-locked host array and a device allocation of the same capacity, grown on demand."""

    def __init__(self, cuda: CudaSession, dtype: np.dtype[Any]) -> None:
        self.cuda, self.dtype = cuda, dtype
        self.capacity = 0
        self.host: np.ndarray = np.empty(0, dtype)
        self.device = 0

    def fit(self, count: int) -> None:
        """Make room for `count` elements (the device address changes when it grows)."""
        if count <= self.capacity:
            return
        if self.capacity:
            self.cuda.free(self.device)
            self.cuda.host_free(self.host)
        nbytes = count * self.dtype.itemsize
        self.host, self.device = self.cuda.host(nbytes, self.dtype), self.cuda.alloc(nbytes)
        self.capacity = count


class TensorRTBackend(BackendBase):
    name = "tensorrt"

    def __init__(self, path: Path, device: int = 0, cuda_graph: bool = False) -> None:
        self.path = path
        self.manifest = read_engine_manifest(path)
        self.meta, self.precision = self.manifest.meta, self.manifest.precision
        self.meta.check_outputs([[d if d >= 0 else None for d in self.manifest.output.shape]], str(path))
        self.label = path.name + (" [cuda graph]" if cuda_graph else "")
        self.cuda = CudaSession(device)
        try:
            with self.cuda.current():
                data = path.read_bytes()
                check_loadable(self.manifest, path, data, trt.__version__, self.cuda.gpu)
                self.trt = _Engine(path, data, self.manifest.raw["build"].get("dla_core"))
                if self.trt.context is None:
                    free, total = self.cuda.mem_get_info()
                    raise SegdeployError(
                        f"{path}: TensorRT could not create an execution context (out of GPU memory: "
                        f"{free >> 20} of {total >> 20} MiB free); close other GPU programs or rebuild "
                        "for smaller shapes"
                    )
                self.stream = self.cuda.stream()
                self.events = [self.cuda.event() for _ in range(4)]
        except BaseException:
            if hasattr(self, "trt"):
                with self.cuda.current():
                    self.trt.release()
            self.cuda.close()  # nothing is left behind a failed load
            raise
        self._finalizer = weakref.finalize(self, _release, self.cuda, self.trt)
        self.input_name, self.output_name = self.manifest.input.name, self.manifest.output.name
        self.inputs = _Buffer(self.cuda, np.dtype(self.manifest.input.dtype))
        self.outputs = _Buffer(self.cuda, np.dtype(self.manifest.output.dtype))
        self.cuda_graph = cuda_graph
        self.graph: int | None = None
        self.capture_failed = False
        self.shape: tuple[int, ...] | None = None
        self.output_shape: tuple[int, ...] = ()

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> TensorRTBackend:
        return cls(path, device=cuda_index(options.device), cuda_graph=options.cuda_graph)

    def accepted_shapes(self) -> AcceptedShapes:
        """The engine's optimisation profile: one shape only for a DLA engine."""
        profile = self.manifest.profile
        return AcceptedShapes.of_input(self.meta.io, profile.min, profile.max)

    def settings(self) -> dict[str, Any]:
        return {
            "tensorrt": trt.__version__,
            "gpu": self.cuda.gpu.to_dict(),
            "build": self.manifest.raw["build"],
            "cuda_graph": self.cuda_graph,
        }

    def memory(self) -> MemoryUse:
        """Page-locked I/O buffers on the host; the engine's activation memory and I/O buffers on the device."""
        buffers = (
            self.inputs.capacity * self.inputs.dtype.itemsize + self.outputs.capacity * self.outputs.dtype.itemsize
        )
        return {"host_bytes": buffers, "device_bytes": self._activation_bytes() + buffers}

    def _activation_bytes(self) -> int:
        # device_memory_size_v2 from TensorRT 10.1; device_memory_size was removed in 11.
        if hasattr(self.trt.engine, "device_memory_size_v2"):  # no local: a traceback must not hold the engine
            return int(self.trt.engine.device_memory_size_v2)
        return int(self.trt.engine.device_memory_size)

    def layer_information(self) -> str:
        """The engine inspector's JSON of every layer (IEngineInspector, TensorRT >= 8.2). The execution
        context is bound to the profile's opt shape first: without a context whose input shapes are all
        set, the inspector shows dynamic dimensions as -1 and no formats (IEngineInspector::
        setExecutionContext). The inspector is released before leaving, with the context current."""
        self.check_open()
        with self.cuda.current():
            self._bind(self.manifest.profile.opt)
            inspector = self.trt.engine.create_engine_inspector()
            try:
                inspector.execution_context = self.trt.context
                return str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
            finally:
                del inspector

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.meta.feed(frames), dtype=self.inputs.dtype)

    def _bind(self, shape: tuple[int, ...]) -> None:
        problems = self.manifest.profile.problems(shape)
        if problems:
            raise SegdeployError(
                f"{self.path}: input shape {shape} does not fit the engine's profile ({'; '.join(problems)})"
            )
        if not self.trt.context.set_input_shape(self.input_name, shape):
            raise SegdeployError(f"{self.path}: TensorRT refused input shape {shape}")
        self.output_shape = tuple(dims_list(self.trt.context.get_tensor_shape(self.output_name)))
        self.inputs.fit(int(np.prod(shape)))
        self.outputs.fit(int(np.prod(self.output_shape)))
        # A captured graph holds the old shape's work and addresses: capture again for this shape.
        self._drop_graph()
        for name, buffer in ((self.input_name, self.inputs), (self.output_name, self.outputs)):
            if not self.trt.context.set_tensor_address(name, buffer.device):
                raise SegdeployError(f"{self.path}: TensorRT refused the address of tensor '{name}'")
        self.shape = shape

    def _enqueue(self) -> bool:
        return bool(self.trt.context.execute_async_v3(self.stream))

    def _execute(self) -> None:
        if self.graph is not None:
            self.cuda.launch(self.graph, self.stream)
            return
        # Also the first call after a shape change with CUDA graphs: an enqueue outside capture lets
        # TensorRT finish shape-dependent setup, which cannot happen inside a capture.
        if not self._enqueue():
            raise SegdeployError(f"{self.path}: TensorRT failed to enqueue inference")
        if self.cuda_graph and not self.capture_failed:
            self.cuda.synchronize(self.stream)
            try:
                self.graph = self.cuda.capture(self.stream, self._enqueue)
            except CaptureError as exc:
                self.capture_failed = True
                print(f"{self.path}: CUDA graph capture failed ({exc}); using plain enqueue", file=sys.stderr)

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        with self.cuda.current():  # also holds the session's lock: one thread's call at a time
            return self._run_engine(feed)

    def _run_engine(self, feed: np.ndarray) -> np.ndarray:
        shape = tuple(int(d) for d in feed.shape)
        if shape != self.shape:
            self._bind(shape)
        host_in = self.inputs.host[: feed.size].reshape(shape)
        np.copyto(host_in, feed)
        host_out = self.outputs.host[: int(np.prod(self.output_shape))].reshape(self.output_shape)
        cuda, stream = self.cuda, self.stream
        start, copied_in, computed, copied_out = self.events
        cuda.record(start, stream)
        cuda.copy_htod(self.inputs.device, host_in, stream)
        cuda.record(copied_in, stream)
        self._execute()
        cuda.record(computed, stream)
        cuda.copy_dtoh(host_out, self.outputs.device, stream)
        cuda.record(copied_out, stream)
        cuda.synchronize(stream)
        self.stages = {
            "h2d": cuda.elapsed_ms(start, copied_in),
            "compute": cuda.elapsed_ms(copied_in, computed),
            "d2h": cuda.elapsed_ms(computed, copied_out),
        }
        result: np.ndarray = host_out.copy()
        return result

    def _drop_graph(self) -> None:
        if self.graph is not None:
            self.cuda.drop_graph(self.graph)
            self.graph = None

    def _release(self) -> None:
        """Graphs, then the execution context, engine and runtime (in that order), then every CUDA
        resource and the context."""
        self._finalizer()
