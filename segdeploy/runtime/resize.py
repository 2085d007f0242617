"""Resizing the runtime needs, with Pillow's filters: the same bilinear filter the training data went
through (data/dataset.py), and nearest for class maps."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, H, W, 3) to (N, size[0], size[1], 3), bilinear."""
    height, width = size
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR)) for f in frames])


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """int32 class maps (N, H, W) to (N, size[0], size[1]), nearest."""
    height, width = size
    return np.stack(
        [
            np.asarray(Image.fromarray(m.astype(np.int32)).resize((width, height), Image.Resampling.NEAREST))
            for m in labels
        ]
    ).astype(np.int32)


def resize_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float (N, C, H, W) to (N, C, size[0], size[1]), bilinear per channel."""
    height, width = size
    return np.stack(
        [
            np.stack(
                [
                    np.asarray(Image.fromarray(c.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR))
                    for c in item
                ]
            )
            for item in logits
        ]
    )
