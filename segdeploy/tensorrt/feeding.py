"""Calibration batches for TensorRT's implicit INT8 calibrator: fixed-shape, contiguous, preprocessed
exactly as the model's input expects. Pure numpy, so the feeding is tested without a GPU."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..backends.base import normalize
from ..meta import ModelMeta
from ..precision.calibration import CalibrationSet


def calibration_batches(calibration: CalibrationSet, meta: ModelMeta, batch: int) -> Iterator[np.ndarray]:
    """Batches of `batch` images; the calibrator's profile is fixed, so a short last batch is dropped."""
    frames: list[np.ndarray] = []
    for frame in calibration.frames():
        frames.append(frame[0])
        if len(frames) == batch:
            stacked = np.stack(frames)
            frames = []
            recipe = meta.recipe
            yield stacked if meta.io.fold_preprocess else normalize(stacked, recipe.mean, recipe.std)


def batch_count(calibration: CalibrationSet, batch: int) -> int:
    return len(calibration.ids) // batch
