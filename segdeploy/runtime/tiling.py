"""Tiled inference: images larger than a model takes (orthomosaics, large frames) cut into overlapping
tiles, run in batches through any backend, blended, and handed on band by band.

Blending. Each tile's scores are weighted by a separable window w(y) * w(x) of the distance d from a tile
edge that another tile overlaps (edges on the image border are not tapered): with overlap O and
m = O // 4, w(d) = clip((d - m + 0.5) / (O - 2m), 0, 1). So the m pixels next to such an edge, which saw the
least context, get no weight, and across the middle of the overlap the two tiles cross-fade linearly
(their weights sum to 1). When m covers the model's receptive context, the stitched class map equals
the whole-image one. The weighted sums are argmaxed without dividing by the weights' sum (a positive
factor per pixel does not change the argmax). Graphs exported with --argmax give no scores: each tile
votes for its class with the same weights (one-hot class maps blended like scores; ties go to the lower
class index).

Memory. One tile row's band of weighted scores (classes x tile height x image width, float32) and a
batch of tiles (BATCH_PIXELS: what the backend's activations grow with) are held, never the image's
scores: the reader is asked for one tile at a time and the writer gets each band's class map (uint8)
and valid mask as soon as no later tile can change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..backends.base import Backend
from ..errors import SegdeployError
from ..meta import NODATA, STRIDE, UNBOUNDED, AcceptedShapes

DEFAULT_TILE = 1024  # the tile side when none is given (capped by what the model takes)
BATCH_PIXELS = 1 << 20  # tiles per run: as many as hold 1 megapixel (at least one; within the model's range)


class TileReader(Protocol):
    """An image read a window at a time."""

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        ...

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 RGB (height, width, 3) of the window, and its valid mask (height, width), bool."""
        ...


class BandWriter(Protocol):
    """Where a class map goes, a band of full-width rows at a time, top to bottom."""

    def write(self, row: int, classes: np.ndarray, valid: np.ndarray) -> None:
        """Rows row .. row + len(classes) - 1: uint8 class indices and the bool mask of valid pixels."""
        ...


class ArrayReader:
    """A uint8 RGB frame (H, W, 3) in memory as a TileReader; `valid` (H, W) marks pixels with data."""

    def __init__(self, frame: np.ndarray, valid: np.ndarray | None = None) -> None:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3 or 0 in frame.shape:
            raise SegdeployError(f"expected a non-empty uint8 RGB frame HxWx3, got {frame.dtype} {frame.shape}")
        self.frame = frame
        self.valid = np.ones(frame.shape[:2], bool) if valid is None else valid.astype(bool)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.frame.shape[0]), int(self.frame.shape[1])

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        window = (slice(row, row + height), slice(col, col + width))
        return self.frame[window], self.valid[window]


class ArrayWriter:
    """Collects a class map in memory: `classes` (H, W) uint8, NODATA where the input had no data."""

    def __init__(self, height: int, width: int) -> None:
        self.classes = np.full((height, width), NODATA, np.uint8)

    def write(self, row: int, classes: np.ndarray, valid: np.ndarray) -> None:
        self.classes[row : row + len(classes)] = np.where(valid, classes, NODATA)


@dataclass(frozen=True)
class Tiling:
    """Tiles of `tile` (height, width) pixels run up to `batch` at a time (at least `least`: a model of
    one batch size gets its last batch padded), overlapping by `overlap` pixels."""

    tile: tuple[int, int]
    overlap: int
    batch: int
    least: int = 1


def plan_tiling(
    shapes: Sequence[AcceptedShapes], image: tuple[int, int], tile: int | None = None, overlap: int | None = None
) -> Tiling:
    """The tiling of an image of `image` (height, width) pixels for a model taking `shapes` (all of them:
    the graph's and the export's ranges). `tile`: the side [the largest the model takes, at most
    DEFAULT_TILE]; `overlap` [tile // 8]. A tile larger than the image is cut to the image (rounded up to
    STRIDE, at least the model's minimum). Refused in one line: a tile that is not a multiple of STRIDE or
    outside the model's range, an overlap outside 0 .. tile - 1."""
    low = max(max(s.height[0], s.width[0]) for s in shapes)
    high = min(min(s.height[1], s.width[1]) for s in shapes)
    if tile is None:
        tile = min(DEFAULT_TILE, high) // STRIDE * STRIDE
    if tile < STRIDE or tile % STRIDE:
        raise SegdeployError(f"--tile {tile}: tiles must be a multiple of the model's stride {STRIDE}")
    if not low <= tile <= high:
        span = f"{low} or more" if high == UNBOUNDED else f"{low} to {high}"
        raise SegdeployError(f"--tile {tile}: outside the tile sizes the model takes ({span} px)")
    overlap = tile // 8 if overlap is None else overlap
    if not 0 <= overlap < tile:
        raise SegdeployError(f"--overlap {overlap}: must be from 0 to less than the tile ({tile})")
    sides = tuple(max(low, min(tile, -(-side // STRIDE) * STRIDE)) for side in image)
    least = max(s.batch[0] for s in shapes)
    batch = max(least, min(max(1, BATCH_PIXELS // (sides[0] * sides[1])), min(s.batch[1] for s in shapes)))
    for accepted in shapes:
        accepted.check_size(batch, sides[0], sides[1], f"--tile {tile}")
    return Tiling((sides[0], sides[1]), overlap, batch, least)


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of `tile` pixels covering `size` pixels with at least `overlap` between
    neighbours; the last tile ends on the border."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def edge_weights(length: int, overlap: int, low: bool, high: bool) -> np.ndarray:
    """The window along one axis of a tile `length` long: tapered at the low and/or high end (module
    docstring), float32."""
    margin = overlap // 4
    ramp = overlap - 2 * margin
    weights = np.ones(length, np.float32)
    if ramp <= 0:
        return weights
    distance = np.arange(length, dtype=np.float32)
    taper = np.clip((distance - margin + 0.5) / ramp, 0.0, 1.0)
    if low:
        weights = np.minimum(weights, taper)
    if high:
        weights = np.minimum(weights, taper[::-1])
    return weights


def segment_tiled(backend: Backend, reader: TileReader, writer: BandWriter, tiling: Tiling) -> None:
    """Class map of the reader's image to the writer, tile by tile through `backend` (module docstring)."""
    height, width = reader.shape
    tile_h, tile_w = tiling.tile
    classes = backend.meta.num_classes
    if classes >= NODATA:
        raise SegdeployError(f"{backend.label}: {classes} classes; tiled class maps hold at most {NODATA - 1}")
    rows = tile_starts(height, tile_h, tiling.overlap)
    cols = tile_starts(width, tile_w, tiling.overlap)
    scores = np.zeros((classes, tile_h, width), np.float32)  # rows row .. row + tile_h - 1 of the image
    valid = np.zeros((tile_h, width), bool)
    for index, row in enumerate(rows):
        band = min(tile_h, height - row)
        along_y = edge_weights(band, tiling.overlap, row > 0, row + tile_h < height)
        for first in range(0, len(cols), tiling.batch):
            chunk = cols[first : first + tiling.batch]
            frames = np.zeros((max(len(chunk), tiling.least), tile_h, tile_w, 3), np.uint8)
            for slot, col in enumerate(chunk):
                span = min(tile_w, width - col)
                pixels, mask = reader.read(row, col, band, span)
                frames[slot, :band, :span] = pixels
                valid[:band, col : col + span] = mask
            output = backend.run(frames)
            for slot, col in enumerate(chunk):
                span = min(tile_w, width - col)
                weight = along_y[:, None] * edge_weights(span, tiling.overlap, col > 0, col + tile_w < width)
                target = scores[:, :band, col : col + span]
                if output.ndim == 4:
                    target += output[slot, :, :band, :span] * weight
                else:
                    votes = output[slot, :band, :span]
                    for label in range(classes):
                        target[label] += (votes == label) * weight
        done = (rows[index + 1] if index + 1 < len(rows) else height) - row
        writer.write(row, scores[:, :done].argmax(0).astype(np.uint8), valid[:done].copy())
        scores[:, : tile_h - done] = scores[:, done:]
        scores[:, tile_h - done :] = 0.0
        valid[: tile_h - done] = valid[done:]
        valid[tile_h - done :] = False
