"""The fields of a farm, from GeoJSON: Polygon/MultiPolygon features named by their `name` or `id`
property (else the feature's id, else "field N"), in the file's CRS: the legacy `crs` member
({"type": "name", "properties": {"name": "EPSG:32632"}}) or, without one, longitude/latitude on
WGS 84 (RFC 7946)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SegdeployError
from ..files import read_text

RFC7946_CRS = "OGC:CRS84"  # longitude, latitude on WGS 84: GeoJSON's CRS when the file names none
POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Field:
    name: str
    geometry: dict[str, Any]  # a GeoJSON Polygon or MultiPolygon


@dataclass(frozen=True)
class FieldSet:
    path: Path
    crs: str
    fields: tuple[Field, ...]


def read_fields(path: Path) -> FieldSet:
    """The fields in a GeoJSON file, or one line naming the file and what is wrong with it."""
    return fields_from_text(read_text(path, "GeoJSON"), path)


def fields_from_text(text: str, path: Path) -> FieldSet:
    """The fields in GeoJSON text read from `path` (named in the one-line error)."""
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise SegdeployError(f"{path}: not readable GeoJSON ({exc})") from None
    try:
        return _parse(document, path)
    except _Bad as exc:
        raise SegdeployError(f"{path}: {exc}") from None


class _Bad(ValueError):
    pass


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _parse(document: Any, path: Path) -> FieldSet:
    """Fields from a parsed GeoJSON document (a FeatureCollection or one Feature); raises _Bad."""
    if not isinstance(document, dict) or document.get("type") not in ("FeatureCollection", "Feature"):
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise _Bad(f"expected a GeoJSON FeatureCollection of Polygon/MultiPolygon fields, got {kind!r}")
    features = document.get("features") if document["type"] == "FeatureCollection" else [document]
    if not isinstance(features, list) or not features:
        raise _Bad("no features: expected Polygon/MultiPolygon fields")
    fields = [_field(feature, number) for number, feature in enumerate(features, 1)]
    names = [f.name for f in fields]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _Bad(f"two or more fields are named {twice[0]!r}; give each field its own name or id")
    return FieldSet(path, _crs_name(document.get("crs")), tuple(fields))


def _crs_name(crs: Any) -> str:
    if crs is None:
        return RFC7946_CRS
    properties = crs.get("properties") if isinstance(crs, dict) else None
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str) or not name or crs.get("type") != "name":
        raise _Bad('"crs" must be {"type": "name", "properties": {"name": "EPSG:..."}} (or be left out: WGS 84)')
    return name


def _field(feature: Any, number: int) -> Field:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _Bad(f"feature {number} is not a GeoJSON Feature")
    properties = feature.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    name = next(
        (str(v) for v in (properties.get("name"), properties.get("id"), feature.get("id")) if v not in (None, "")),
        f"field {number}",
    )
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in POLYGONAL:
        what = f"a {kind}" if kind else "without geometry"
        raise _Bad(f"field {name!r} is {what}; fields must be Polygon or MultiPolygon")
    assert isinstance(geometry, dict)
    polygons = geometry.get("coordinates")
    for polygon in [polygons] if kind == "Polygon" else _list(polygons, name, "polygons"):
        for ring in _list(polygon, name, "rings"):
            _check_ring(ring, name)
    return Field(name, {"type": kind, "coordinates": polygons})


def _list(value: Any, name: str, what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"field {name!r}: expected a non-empty list of {what} in its coordinates")
    return value


def _check_ring(ring: Any, name: str) -> None:
    positions = _list(ring, name, "positions")
    for position in positions:
        if not (isinstance(position, list) and len(position) in (2, 3) and all(_finite(v) for v in position)):
            raise _Bad(f"field {name!r}: position {json.dumps(position)[:40]} is not [x, y] in finite numbers")
    if len(positions) < 4 or positions[0][:2] != positions[-1][:2]:
        raise _Bad(f"field {name!r}: a ring must be closed (first position = last) and have 4 positions or more")


def _finite(value: Any) -> bool:
    """A JSON number a float can hold: not a bool, NaN, infinity or an integer of 400 digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= 1e300 if isinstance(value, int) else math.isfinite(value)


def reproject_fields(fields: FieldSet, crs: Any) -> list[Field]:
    """The fields in the raster's CRS `crs` (rasterio.warp.transform_geom, which keeps GeoJSON's
    longitude-first order for geographic CRSs), or one line when the CRS cannot be read or transformed."""
    from rasterio._err import CPLE_BaseError  # GDAL's errors; rasterio.errors does not export it
    from rasterio.crs import CRS
    from rasterio.errors import CRSError, RasterioError
    from rasterio.features import bounds
    from rasterio.warp import transform_geom

    try:
        source = CRS.from_user_input(fields.crs)
    except CRSError as exc:
        raise SegdeployError(
            f"{fields.path}: CRS {fields.crs!r} is not readable ({str(exc).splitlines()[0]})"
        ) from None
    if source == crs:
        return list(fields.fields)
    failed = f"{fields.path}: cannot transform {fields.crs} to {crs.to_string()}"
    try:
        moved = [Field(f.name, transform_geom(source, crs, f.geometry)) for f in fields.fields]
    except (CPLE_BaseError, CRSError, RasterioError) as exc:  # e.g. "Cannot find coordinate operations"
        raise SegdeployError(f"{failed} ({str(exc).splitlines()[0]})") from None
    for field in moved:  # PROJ answers inf for a point outside the target CRS's domain
        if not all(math.isfinite(v) for v in bounds(field.geometry)):
            raise SegdeployError(f"{failed}: field {field.name!r} lies outside the raster CRS's domain")
    return moved
