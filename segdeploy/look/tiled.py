"""predict on images larger than the model takes: tiled inference (runtime/tiling.py) of frames in memory,
and of TIFF orthomosaics read and written by windows through rasterio (geo/), with a downsampled preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..backends.base import Backend
from ..data.masks import open_image
from ..geo.library import gdal_env
from ..geo.raster import ClassMapWriter, RasterReader, preview_step, read_class_map
from ..meta import NODATA, AcceptedShapes
from ..runtime.tiling import ArrayReader, ArrayWriter, plan_tiling, segment_tiled
from .overlay import overlay, with_legend

RASTER_SUFFIXES = (".tif", ".tiff")  # tiled from the file by windows (rasterio), class map as GeoTIFF
PREVIEW_SIDE = 2048  # the longer side of a tiled image's overlay, at most


def too_large(shapes: list[AcceptedShapes], image: Path | tuple[int, ...]) -> bool:
    """Whether an image (a file: its header's size; or a (height, width, ...) shape) is taller or wider
    than the largest frame the model takes."""
    if isinstance(image, Path):
        with open_image(image, load=False) as opened:
            image = (opened.height, opened.width)
    return any(image[0] > s.height[1] or image[1] > s.width[1] for s in shapes)


def segment_frame_tiled(
    backend: Backend, frame: np.ndarray, shapes: list[AcceptedShapes], tile: int | None, overlap: int | None
) -> np.ndarray:
    """The class map (H, W) uint8 of a frame in memory, tiled."""
    reader = ArrayReader(frame)
    writer = ArrayWriter(*reader.shape)
    segment_tiled(backend, reader, writer, plan_tiling(shapes, reader.shape, tile, overlap))
    return writer.classes


def segment_raster(
    backend: Backend,
    path: Path,
    mask: Path,
    preview: Path,
    shapes: list[AcceptedShapes],
    tile: int | None,
    overlap: int | None,
    alpha: float,
) -> None:
    """The class map of a TIFF as a GeoTIFF `mask` (geo/raster.py: the input's CRS and transform, nodata
    where it had none), and `preview`: the overlay at most PREVIEW_SIDE pixels wide or high, read by
    decimation from both files."""
    meta = backend.meta
    with gdal_env(str(path)), RasterReader(path) as reader:
        tiling = plan_tiling(shapes, reader.shape, tile, overlap)
        with ClassMapWriter(mask, reader, meta.colors) as writer:
            segment_tiled(backend, reader, writer, tiling)
        step = preview_step(reader.shape, PREVIEW_SIDE)
        frame, valid = reader.decimated(step)
        classes = read_class_map(mask, step)
    picture = preview_picture(frame, np.where(valid, classes, NODATA), meta.class_names, meta.colors, alpha)
    picture.save(preview, format="PNG")


def predict_raster(
    backend: Backend,
    path: Path,
    staging: Path,
    shapes: list[AcceptedShapes],
    tile: int | None,
    overlap: int | None,
    alpha: float,
) -> tuple[Path, Path]:
    """predict's output for a TIFF it tiles: masks/NAME.tif and previews/NAME.png under `staging`; their
    paths relative to it."""
    mask, preview = Path("masks") / f"{path.stem}.tif", Path("previews") / f"{path.stem}.png"
    for target in (mask, preview):
        (staging / target).parent.mkdir(parents=True, exist_ok=True)
    segment_raster(backend, path, staging / mask, staging / preview, shapes, tile, overlap, alpha)
    return mask, preview


def preview_picture(
    frame: np.ndarray, classes: np.ndarray, names: list[str], colors: list[tuple[int, int, int]], alpha: float
) -> Image.Image:
    """A class map's overlay at most PREVIEW_SIDE on its longer side (taken every n-th pixel), with the
    legend; pixels without data show the frame as it is."""
    step = max(1, -(-max(classes.shape) // PREVIEW_SIDE))
    frame, classes = frame[::step, ::step], classes[::step, ::step]
    picture = np.where((classes == NODATA)[..., None], frame, overlay(frame, classes, colors, alpha))
    return with_legend(picture, names, colors)
