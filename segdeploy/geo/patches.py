"""Weed patches as polygons: the connected regions of one class (4-connected, GDAL's polygonize
through rasterio.features.shapes) at least a minimum area, as GeoJSON in the raster's CRS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import write_atomic
from .pixel_area import PixelArea

MIN_PATCH_AREA_M2 = 0.01  # a 10 cm square: about 100 pixels at a drone's usual 1 cm ground sampling


def ring_area(ring: list[tuple[float, float]]) -> float:
    """The area a closed ring encloses (shoelace). Relative to the first vertex: products of raw UTM
    coordinates (~5e6 m) would lose the square millimetres."""
    (ox, oy), points = ring[0], ring[1:]
    return abs(sum((x0 - ox) * (y1 - oy) - (x1 - ox) * (y0 - oy) for (x0, y0), (x1, y1) in zip(points, points[1:]))) / 2


def polygon_m2(polygon: dict[str, Any], area: PixelArea) -> float:
    """A GeoJSON Polygon's area in m², its outer ring less its holes, measured in `area`'s
    equal-area plane."""
    outer, *holes = (ring_area(area.plane(ring)) for ring in polygon["coordinates"])
    return outer - sum(holes)


def write_patches(mask: Path, target: Path, class_name: str, area: PixelArea, min_area_m2: float, crs_name: str) -> int:
    """Polygonize the 0/1 GeoTIFF `mask` (its 1s) into `target`; returns the number of patches kept.
    GDAL reads the band itself (rasterio.features.shapes takes a Band): memory grows with the polygons,
    not with the raster (rasterio 1.4 `shapes` docstring)."""
    import rasterio
    from rasterio.features import shapes

    features: list[dict[str, Any]] = []
    with rasterio.open(mask) as source:
        band = rasterio.band(source, 1)
        for geometry, _ in shapes(band, mask=band, connectivity=4, transform=source.transform):
            m2 = polygon_m2(geometry, area)
            if m2 >= min_area_m2:
                number = len(features) + 1
                properties = {"class": class_name, "area_m2": round(m2, 6)}
                features.append({"type": "Feature", "id": number, "properties": properties, "geometry": geometry})
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": crs_name}},  # GDAL and QGIS read this legacy member
        "features": features,
    }
    write_atomic(target, lambda tmp: tmp.write_text(json.dumps(collection) + "\n", encoding="utf-8"))
    return len(features)
