"""Where two backends disagree: boundary bands and disagreement maps a person can look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .files import write_atomic

BOUNDARY_COLOR = (255, 210, 0)  # disagreement within `width` px of a class boundary
INTERIOR_COLOR = (255, 40, 40)  # disagreement inside a region (thin structures, whole blobs)


def boundary_band(labels: np.ndarray, width: int = 3) -> np.ndarray:
    """True where a pixel lies within `width` px (chessboard distance) of a change of class."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[..., 1:, :] |= labels[..., 1:, :] != labels[..., :-1, :]
    edge[..., :-1, :] |= labels[..., 1:, :] != labels[..., :-1, :]
    edge[..., :, 1:] |= labels[..., :, 1:] != labels[..., :, :-1]
    edge[..., :, :-1] |= labels[..., :, 1:] != labels[..., :, :-1]
    band = edge
    for _ in range(width - 1):
        grown = band.copy()
        grown[..., 1:, :] |= band[..., :-1, :]
        grown[..., :-1, :] |= band[..., 1:, :]
        grown[..., :, 1:] |= band[..., :, :-1]
        grown[..., :, :-1] |= band[..., :, 1:]
        band = grown
    return band


def disagreement_map(frame: np.ndarray, reference: np.ndarray, output: np.ndarray, width: int = 3) -> Image.Image:
    """The frame in dimmed grey, disagreeing pixels coloured by whether they sit on a boundary."""
    grey = frame.astype(np.float32).mean(-1, keepdims=True) * 0.45
    picture = np.repeat(grey, 3, axis=-1)
    differ = reference != output
    band = boundary_band(reference, width)
    picture[differ & band] = BOUNDARY_COLOR
    picture[differ & ~band] = INTERIOR_COLOR
    return Image.fromarray(picture.astype(np.uint8))


def save_disagreement(
    directory: Path, artifact: str, sample_id: str, frame: np.ndarray, reference: np.ndarray, output: np.ndarray
) -> Path:
    path = directory / artifact.replace(".onnx", "").replace(".", "-") / f"{sample_id}.png"
    picture = disagreement_map(frame, reference, output)
    return write_atomic(path, lambda tmp: picture.save(tmp, format="PNG"))
