"""The ground area of one pixel of a georeferenced raster, or why it has none."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PixelArea:
    """`m2`: square metres per pixel, None with `missing` saying why; `metre_per_unit`: the CRS's
    linear unit in metres (for areas of polygons in CRS coordinates)."""

    m2: float | None
    metre_per_unit: float = 1.0
    missing: str = ""


def pixel_area(crs: Any, transform: Any) -> PixelArea:
    """|det(transform)| in the CRS's squared linear unit, converted to m². Only projected CRSs: a
    geographic CRS's pixels differ in area from row to row, and are refused with the way out."""
    from rasterio.errors import CRSError

    if crs is None or transform.is_identity:
        return PixelArea(None, missing="has no georeference (no CRS or no geotransform)")
    if not crs.is_projected:
        kind = "geographic (degrees)" if crs.is_geographic else "neither projected nor geographic"
        return PixelArea(
            None,
            missing=f"is in {crs.to_string()}, {kind}; areas need a projected CRS in metres or feet "
            "(reproject it, e.g. `gdalwarp -t_srs EPSG:32632`, the UTM zone of the field)",
        )
    try:
        _, metre_per_unit = crs.linear_units_factor  # e.g. ('US survey foot', 0.3048006096)
    except CRSError:
        return PixelArea(None, missing=f"is in {crs.to_string()}, whose linear unit is unknown")
    return PixelArea(abs(transform.determinant) * metre_per_unit**2, metre_per_unit)
