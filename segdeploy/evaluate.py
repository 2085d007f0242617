"""Running a backend over a split: padded batches of frames and masks, confusion-matrix mIoU."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .backends.base import Backend
from .data.dataset import SegmentationSplit
from .meta import STRIDE
from .metrics import ConfusionMatrix


def _pad(frames: np.ndarray, masks: np.ndarray, divisor: int, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    height, width = frames.shape[1:3]
    pad_h, pad_w = -height % divisor, -width % divisor
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
        masks = np.pad(masks, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=ignore_index)
    return frames, masks


def batches(
    split: SegmentationSplit, batch_size: int, divisor: int = STRIDE, indices: Sequence[int] | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive same-sized samples (all, or those at `indices`) stacked into batches, padded to a multiple
    of `divisor` (frames with black, masks with the ignore index, so padding never counts in the metrics)."""
    pending: list[tuple[np.ndarray, np.ndarray]] = []
    for index in range(len(split)) if indices is None else indices:
        sample = split[index]
        if pending and (len(pending) == batch_size or pending[0][0].shape != sample[0].shape):
            yield _pad(
                np.stack([s[0] for s in pending]), np.stack([s[1] for s in pending]), divisor, split.spec.ignore_index
            )
            pending = []
        pending.append(sample)
    if pending:
        yield _pad(
            np.stack([s[0] for s in pending]), np.stack([s[1] for s in pending]), divisor, split.spec.ignore_index
        )


def predictions(output: np.ndarray) -> np.ndarray:
    """Class maps from a backend's output, whether logits (N,C,H,W) or class maps (N,H,W)."""
    return output.argmax(1) if output.ndim == 4 else output


def evaluate(
    backend: Backend, split: SegmentationSplit, batch_size: int = 4, indices: Sequence[int] | None = None
) -> ConfusionMatrix:
    matrix = ConfusionMatrix(split.spec.num_classes, split.spec.ignore_index)
    for frames, masks in batches(split, batch_size, indices=indices):
        matrix.update(predictions(backend.run(frames)), masks)
    return matrix
