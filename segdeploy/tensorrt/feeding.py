"""Calibration batches for TensorRT's implicit INT8 calibrator: fixed-shape, contiguous, preprocessed
exactly as the model's input expects. Pure numpy, so the feeding is tested without a GPU."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..data.calibration import CalibrationSet
from ..meta import ModelMeta


def calibration_batches(calibration: CalibrationSet, meta: ModelMeta, batch: int) -> Iterator[np.ndarray]:
    """Batches of `batch` images; the calibrator's profile is fixed, so a short last batch is dropped."""
    frames: list[np.ndarray] = []
    for frame in calibration.frames():
        frames.append(frame[0])
        if len(frames) == batch:
            stacked = np.stack(frames)
            frames = []
            yield calibration.feed(stacked, meta.io)


def batch_count(calibration: CalibrationSet, batch: int) -> int:
    return len(calibration.ids) // batch
