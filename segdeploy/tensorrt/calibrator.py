"""TensorRT's implicit INT8 entropy calibrator (TensorRT 8.5-10.x; deprecated in 10.1, removed in 11),
fed from a segdeploy calibration set, with its cache in the file form trtexec (--calib) and Polygraphy read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorrt as trt

from ..cuda import CudaSession
from ..files import write_atomic
from .calibration_key import write_key

if TYPE_CHECKING:
    from typing import Any

    from typing_extensions import Buffer


class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """Hands TensorRT one device buffer per float32 batch. With `reuse`, TensorRT reads `cache` and asks
    for no batches; otherwise the new cache is written with its key (calibration_key.py) beside it."""

    def __init__(
        self,
        batches: Iterator[np.ndarray],
        batch: int,
        cache: Path,
        key: dict[str, Any],
        reuse: bool,
        cuda: CudaSession,
    ) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self.batches, self.batch, self.cache, self.key, self.cuda = batches, batch, cache, key, cuda
        self.cache_reused = reuse
        self.device: int | None = None
        self.pinned = np.empty(0, np.float32)  # page-locked staging buffer, made with the first batch
        self.stream = cuda.stream()
        self.served = 0

    def get_batch_size(self) -> int:
        return self.batch

    # TensorRT's Python API ends calibration when get_batch returns None; the stubs allow only a list.
    def get_batch(self, names: list[str]) -> list[int] | None:  # type: ignore[override]
        host = next(self.batches, None)
        if host is None:
            return None
        if self.device is None:
            self.device, self.pinned = self.cuda.alloc(host.nbytes), self.cuda.host(host.nbytes, host.dtype)
        # Staged through page-locked memory: pycuda's async copies take nothing else (its docs,
        # memcpy_htod_async: "src must be page-locked memory").
        np.copyto(self.pinned, host.ravel())
        self.cuda.copy_htod(self.device, self.pinned, self.stream)
        self.cuda.synchronize(self.stream)  # the staging buffer is reused: finish before returning
        self.served += 1
        return [self.device]

    def read_calibration_cache(self) -> bytes | None:
        return self.cache.read_bytes() if self.cache_reused else None

    def write_calibration_cache(self, cache: Buffer) -> None:
        data = bytes(memoryview(cache))
        write_atomic(self.cache, lambda tmp: tmp.write_bytes(data))
        write_key(self.cache, self.key)
