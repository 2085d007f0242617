"""Calibration batches for TensorRT's implicit INT8 calibrator: fixed-shape, contiguous, preprocessed
exactly as the model's input expects, in the type the calibrator takes. Pure numpy, so the feeding is
tested without a GPU.

IInt8Calibrator::getBatch (TensorRT C++ API, 8.5-10.x) takes calibration data in FP32 for every input
that is not an index input (INT32/INT64/BOOL): a model with folded preprocessing, whose input is uint8
NHWC frames, is fed the same frames as float32 values 0-255 in the same NHWC layout.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..data.calibration import CalibrationSet
from ..meta import ModelMeta


def calibration_batches(calibration: CalibrationSet, meta: ModelMeta, batch: int) -> Iterator[np.ndarray]:
    """float32 batches of `batch` images; the calibrator's profile is fixed, so a short last batch is dropped."""
    frames: list[np.ndarray] = []
    for frame in calibration.frames():
        frames.append(frame[0])
        if len(frames) == batch:
            stacked = np.stack(frames)
            frames = []
            yield np.ascontiguousarray(calibration.feed(stacked, meta.io), dtype=np.float32)


def batch_count(calibration: CalibrationSet, batch: int) -> int:
    return len(calibration.ids) // batch
