"""GeoTIFF reading by windows and class-map GeoTIFF writing, with rasterio. Neither ever holds the
whole raster: the reader serves windows, the writer takes bands of rows."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import SegdeployError
from ..files import atomic_path
from ..meta import NODATA, Color
from .library import require_rasterio

BLOCK = 256  # the class map's internal tile side (GTiff BLOCKXSIZE/BLOCKYSIZE: multiples of 16)
STRIP = 512  # rows a decimated read takes at a time (RGB, 20,000 px wide: 30 MB, within geo.library.CACHE_BYTES)


# GDAL's block cache while tiling (its default, 5% of RAM, would fill with the input). rasterio.Env passes an
# integer GDAL_CACHEMAX to GDALSetCacheMax64 as bytes (its env.py example: GDAL_CACHEMAX=128000000), not as
# GDAL's "megabytes below 100000": 64 would be a 64-byte cache, every block decoded again for each tile.
class RasterReader:
    """A raster file as a TileReader (runtime/tiling.py): bands 1-3 as RGB (one band: grey), 8-bit, or
    16-bit scaled by 1/257 as data/masks.py scales 16-bit images; valid where GDAL's dataset mask is
    non-zero (the alpha band, the internal mask or the nodata value, whichever the file has)."""

    def __init__(self, path: Path) -> None:
        rasterio = require_rasterio(str(path))
        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.dataset = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise SegdeployError(f"{path}: unreadable raster ({exc})") from None
        dtype = self.dataset.dtypes[0]
        if dtype not in ("uint8", "uint16"):
            self.dataset.close()
            raise SegdeployError(f"{path}: {dtype} raster; expected 8- or 16-bit bands (RGB, RGBA or grey)")
        self.bands = [1, 2, 3] if self.dataset.count >= 3 else [1, 1, 1]
        self.sixteen = dtype == "uint16"

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.dataset.height), int(self.dataset.width)

    def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.windows import Window

        window = Window(col, row, width, height)
        return self._rgb(self.dataset.read(self.bands, window=window)), self.dataset.dataset_mask(window=window) > 0

    def decimated(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Every `step`-th pixel of every `step`-th row, as RGB and valid mask (`decimate`)."""
        dataset = self.dataset
        both = decimate(
            dataset,
            step,
            lambda at: np.concatenate([dataset.read(self.bands, window=at), dataset.dataset_mask(window=at)[None]]),
        )
        return self._rgb(both[:3]), both[3] > 0

    def _rgb(self, bands: np.ndarray) -> np.ndarray:
        if self.sixteen:
            bands = np.round(bands / 257.0).astype(np.uint8)
        return np.ascontiguousarray(bands.transpose(1, 2, 0))

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> RasterReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class ClassMapWriter:
    """A BandWriter (runtime/tiling.py) into a class-map GeoTIFF shaped like `source`: one uint8 band,
    tiled BLOCK x BLOCK, DEFLATE-compressed, BigTIFF when it might pass 4 GB (BIGTIFF=IF_SAFER: GDAL's
    default IF_NEEDED cannot foresee the size of a compressed file), the source's CRS and transform,
    NODATA where the source had no data, and a colour table of the class colours (nodata transparent).
    Written under a temporary name beside `path`, renamed onto it when closed after no error (use `with`)."""

    def __init__(self, path: Path, source: RasterReader, colors: list[Color]) -> None:
        rasterio = require_rasterio(str(path))
        self.staged = contextlib.ExitStack()
        temporary = self.staged.enter_context(atomic_path(path))
        dataset = source.dataset
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "height": dataset.height,
            "width": dataset.width,
            "count": 1,
            "dtype": "uint8",
            "nodata": NODATA,
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": "deflate",
            "bigtiff": "IF_SAFER",
        }
        if dataset.crs is not None or not dataset.transform.is_identity:
            profile.update(crs=dataset.crs, transform=dataset.transform)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            self.dataset = rasterio.open(temporary, "w", **profile)
        table = {index: (*color, 255) for index, color in enumerate(colors)}
        self.dataset.write_colormap(1, {**table, NODATA: (0, 0, 0, 0)})

    def write(self, row: int, classes: np.ndarray, valid: np.ndarray) -> None:
        from rasterio.windows import Window

        band = np.where(valid, classes, NODATA).astype(np.uint8)
        self.dataset.write(band, 1, window=Window(0, row, band.shape[1], band.shape[0]))

    def close(self) -> None:
        """Finish the file and rename it into place."""
        self.dataset.close()
        self.staged.close()

    def __enter__(self) -> ClassMapWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.dataset.close()
        self.staged.__exit__(kind, error, trace)  # on an error the temporary file is removed, `path` untouched


def decimate(dataset: Any, step: int, read: Callable[[Any], np.ndarray]) -> np.ndarray:
    """Every `step`-th pixel of every `step`-th row of (bands, H, W) `read(window)`, read in full-width
    strips of about STRIP rows, so each block is decoded once and memory stays one strip. (GDAL's own
    decimated read, rasterio's `out_shape`, decoded a 20,000 x 10,000 deflate GeoTIFF's block row again
    for every output row: tens of GB read for one preview.)"""
    from rasterio.windows import Window

    rows = step * max(1, STRIP // step)
    strips = [
        read(Window(0, row, dataset.width, min(rows, dataset.height - row)))[:, ::step, ::step]
        for row in range(0, dataset.height, rows)
    ]
    return np.concatenate(strips, axis=1)


def read_class_map(path: Path, step: int = 1) -> np.ndarray:
    """A class-map GeoTIFF's band, every `step`-th pixel (`decimate`)."""
    with require_rasterio(str(path)).open(path) as dataset:
        return decimate(dataset, step, lambda window: dataset.read([1], window=window))[0]


def preview_step(shape: tuple[int, int], longest: int) -> int:
    """The whole step that brings `shape`'s longer side down to at most `longest`."""
    return max(1, math.ceil(max(shape) / longest))
