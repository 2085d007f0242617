"""The ground area of a raster's pixels, or why it has none. A projected CRS: |det(transform)| in the
CRS's squared linear unit, the same for every pixel. A geographic CRS (north-up): each row's pixel area
on the CRS's ellipsoid, exact, from the Lambert cylindrical equal-area projection, in which meridians
and parallels are straight and areas are true: a pixel there is a rectangle of a·Δλ by
a/2·(q(φ_top) − q(φ_bottom)), q the authalic function (Snyder, Map Projections: A Working Manual, 1987,
eq. 3-12)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PixelArea:
    """`known` False with `missing` saying why. Projected: `m2` per pixel and `metre_per_unit`.
    Geographic: `ellipsoid` (semi-major axis in metres, eccentricity) and `radian_per_unit`."""

    transform: Any = None
    m2: float | None = None
    metre_per_unit: float = 1.0
    ellipsoid: tuple[float, float] | None = None
    radian_per_unit: float = 1.0
    missing: str = ""

    @property
    def known(self) -> bool:
        return not self.missing

    def rows_m2(self, top: int, height: int) -> np.ndarray:
        """The area of one pixel in each of rows top..top+height-1 (geographic rasters)."""
        assert self.ellipsoid is not None
        edges = self.transform.f + self.transform.e * np.arange(top, top + height + 1, dtype=np.float64)
        y = self._authalic_y(edges * self.radian_per_unit)
        return np.abs(np.diff(y)) * self.ellipsoid[0] * abs(self.transform.a) * self.radian_per_unit

    def plane(self, ring: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        """A ring's vertices in an equal-area plane in metres, so that the shoelace gives square metres
        (exact for the pixel-edge polygons of a north-up raster)."""
        if self.ellipsoid is None:
            return [(x * self.metre_per_unit, y * self.metre_per_unit) for x, y, *_ in ring]
        lats = self._authalic_y(np.array([p[1] for p in ring], np.float64) * self.radian_per_unit)
        return [(self.ellipsoid[0] * p[0] * self.radian_per_unit, float(y)) for p, y in zip(ring, lats)]

    def _authalic_y(self, lat: np.ndarray) -> np.ndarray:
        """a/2 · q(φ): the northing of the cylindrical equal-area projection (k0 = 1)."""
        assert self.ellipsoid is not None
        a, e = self.ellipsoid
        s = np.sin(lat)
        if e == 0:
            return a * s
        q = (1 - e * e) * (s / (1 - e * e * s * s) - np.log((1 - e * s) / (1 + e * s)) / (2 * e))
        return a * q / 2


def pixel_area(crs: Any, transform: Any, height: int) -> PixelArea:
    """How to measure the pixels of a raster of `height` rows in `crs` with geotransform `transform`."""
    from rasterio.errors import CRSError

    if crs is None or transform.is_identity:
        return PixelArea(missing="has no georeference (no CRS or no geotransform)")
    name = crs.to_string()
    if crs.is_geographic:
        return _geographic(crs, transform, height, name)
    if not crs.is_projected:
        return PixelArea(missing=f"is in {name}, neither projected nor geographic")
    try:
        _, metre_per_unit = crs.linear_units_factor  # e.g. ('US survey foot', 0.3048006096)
    except CRSError:
        return PixelArea(missing=f"is in {name}, whose linear unit is unknown")
    return PixelArea(transform, abs(transform.determinant) * metre_per_unit**2, metre_per_unit)


def _geographic(crs: Any, transform: Any, height: int, name: str) -> PixelArea:
    if transform.b != 0 or transform.d != 0:
        return PixelArea(missing=f"is in {name} with a rotated geotransform; reproject it (e.g. gdalwarp)")
    _, radian_per_unit = crs.units_factor  # ('degree', 0.0174532925199433)
    if max(abs(transform.f), abs(transform.f + transform.e * height)) * radian_per_unit > math.pi / 2 + 1e-9:
        return PixelArea(missing=f"is in {name} but its rows reach beyond the poles (latitude > 90°)")
    found = re.search(r'(?:SPHEROID|ELLIPSOID)\["[^"]*",\s*([0-9.eE+-]+),\s*([0-9.eE+-]+)', crs.to_wkt())
    if found is None:
        return PixelArea(missing=f"is in {name}, whose ellipsoid is unknown")
    semi_major, inverse_flattening = float(found[1]), float(found[2])
    flattening = 0.0 if inverse_flattening == 0 else 1 / inverse_flattening
    return PixelArea(
        transform,
        ellipsoid=(semi_major, math.sqrt(flattening * (2 - flattening))),
        radian_per_unit=radian_per_unit,
    )
