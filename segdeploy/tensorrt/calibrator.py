"""TensorRT's implicit INT8 entropy calibrator (TensorRT 8.5-10.x; deprecated in 10.1, removed in 11),
fed from a segdeploy calibration set, with its cache in the file form trtexec (--calib) and Polygraphy read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pycuda.driver as cuda
import tensorrt as trt

from ..files import write_atomic

if TYPE_CHECKING:
    from typing_extensions import Buffer


class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """Hands TensorRT one device buffer per batch; reuses `cache` when it exists (no batches read then)."""

    def __init__(self, batches: Iterator[np.ndarray], batch: int, cache: Path) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self.batches, self.batch, self.cache = batches, batch, cache
        self.device: cuda.DeviceAllocation | None = None
        self.served = 0
        self.cache_reused = False

    def get_batch_size(self) -> int:
        return self.batch

    # TensorRT's Python API ends calibration when get_batch returns None; the stubs allow only a list.
    def get_batch(self, names: list[str]) -> list[int] | None:  # type: ignore[override]
        host = next(self.batches, None)
        if host is None:
            return None
        host = np.ascontiguousarray(host)
        if self.device is None:
            self.device = cuda.mem_alloc(host.nbytes)
        cuda.memcpy_htod(self.device, host)
        self.served += 1
        return [int(self.device)]

    def read_calibration_cache(self) -> bytes | None:
        if self.cache.is_file():
            self.cache_reused = True
            return self.cache.read_bytes()
        return None

    def write_calibration_cache(self, cache: Buffer) -> None:
        data = bytes(memoryview(cache))
        write_atomic(self.cache, lambda tmp: tmp.write_bytes(data))
