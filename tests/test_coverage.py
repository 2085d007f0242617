"""segdeploy coverage: a georeferenced class map built here (UTM zone 32N, EPSG:32632, 2 cm pixels):
counts equal the raster's own bincount, areas are count x pixel area, fields that partition the raster
sum to the whole, a field drawn in WGS 84 lands on the same pixels, and weed patches are valid GeoJSON
filtered by area. Property tests of the GeoJSON fields parser."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segdeploy.cli import app
from segdeploy.errors import SegdeployError
from segdeploy.geo import coverage as coverage_module
from segdeploy.geo.coverage import write_coverage
from segdeploy.geo.fields import RFC7946_CRS, fields_from_text

from .conftest import SHARED

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402
from rasterio.warp import transform as transform_points  # noqa: E402

CLASSES = ["soil", "crop", "weed"]
PIXEL = 0.02  # metres
WEST, NORTH = 500_000.0, 5_000_000.0  # UTM 32N, near 9°E 45.1°N
UTM = "EPSG:32632"
NODATA = 255


def _labels(height: int = 300, width: int = 500, seed: int = 0) -> np.ndarray:
    """Soil with crop rows, weed patches of known sizes, and a few nodata pixels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    labels[:, 40::60] = 1
    labels[rng.random((height, width)) < 0.02] = 2  # isolated weed pixels: patches of 1-4 px
    for top, left, size in ((50, 100, 20), (150, 300, 10), (200, 400, 30)):  # a soil margin around the patches
        labels[top - 1 : top + size + 1, left - 1 : left + size + 1] = 0
    labels[50:70, 100:120] = 2  # a 20x20 px patch: 0.16 m²
    labels[150:160, 300:310] = 2  # 10x10 px: 0.04 m²
    labels[200:230, 400:430] = 2  # 30x30 px with a 10x10 hole of soil: 0.32 m²
    labels[210:220, 410:420] = 0
    labels[0, :25] = NODATA
    return labels


def _write_map(path: Path, labels: np.ndarray, crs: str | None = UTM, georeferenced: bool = True) -> Path:
    height, width = labels.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8", "nodata": NODATA}
    profile.update(tiled=True, blockxsize=64, blockysize=64)
    if georeferenced:
        profile.update(crs=crs, transform=from_origin(WEST, NORTH, PIXEL, PIXEL))
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(labels, 1)
    return path


def _polygon(points: list[tuple[float, float]]) -> dict:
    ring = [list(p) for p in points] + [list(points[0])]
    return {"type": "Polygon", "coordinates": [ring]}


def _pixels(col: float, row: float) -> tuple[float, float]:
    return WEST + col * PIXEL, NORTH - row * PIXEL


def _fields(path: Path, named: dict[str, list[tuple[float, float]]], crs: str | None = UTM) -> Path:
    """A GeoJSON of polygons given as (col, row) pixel corners of the test raster."""
    features = [
        {"type": "Feature", "properties": {"name": name}, "geometry": _polygon([_pixels(c, r) for c, r in corners])}
        for name, corners in named.items()
    ]
    document: dict = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(document))
    return path


def _counts(labels: np.ndarray) -> list[int]:
    return np.bincount(labels[labels != NODATA], minlength=len(CLASSES)).tolist()


@pytest.fixture()
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of one block row (64 rows): the test raster is read in 5 bands, not 1."""
    monkeypatch.setattr(coverage_module, "BAND_PIXELS", 1)


def test_whole_raster_counts_shares_and_areas(tmp_path: Path, small_bands: None) -> None:
    labels = _labels()
    report = write_coverage(_write_map(tmp_path / "map.tif", labels), tmp_path / "out", CLASSES)
    assert report.whole.counts == _counts(labels)
    assert report.nodata_pixels == 25
    saved = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert saved["crs"] == UTM and saved["pixel_area_m2"] == pytest.approx(PIXEL**2)
    rows = saved["whole"]["classes"]
    assert [r["pixels"] for r in rows] == _counts(labels)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    for row in rows:
        assert row["area_m2"] == pytest.approx(row["pixels"] * PIXEL**2)
        assert row["area_ha"] == pytest.approx(row["pixels"] * PIXEL**2 / 1e4)
    with open(tmp_path / "out" / "coverage.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["field"], r["class"], int(r["pixels"])) for r in table] == [
        ("", name, n) for name, n in zip(CLASSES, _counts(labels))
    ]


def test_fields_that_partition_the_raster_sum_to_the_whole(tmp_path: Path, small_bands: None) -> None:
    labels = _labels()
    height, width = labels.shape
    jagged = [(200.37 + 40 * k, 130.3 + 23.7 * math.sin(k)) for k in range(9)]  # no pixel centre on it
    fields = {
        "west": [(-5, -5), (200.37, -5), (200.37, height + 5), (-5, height + 5)],  # beyond the edges: clipped
        "north-east": [(200.37, -5), (width + 5, -5), (width + 5, jagged[-1][1]), *reversed(jagged)],
        "south-east": [*jagged, (width + 5, jagged[-1][1]), (width + 5, height + 5), (200.37, height + 5)],
    }
    report = write_coverage(
        _write_map(tmp_path / "map.tif", labels), tmp_path / "out", CLASSES, _fields(tmp_path / "f.geojson", fields)
    )
    assert list(report.fields) == list(fields)
    counts = {name: tally.counts for name, tally in report.fields.items()}
    assert all(min(c) > 0 for c in counts.values())
    assert np.sum(list(counts.values()), axis=0).tolist() == report.whole.counts == _counts(labels)
    assert counts["west"] == _counts(labels[:, :200])  # centres 199.5 < 200.37 < 200.5
    saved = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert [f["name"] for f in saved["fields"]] == list(fields)
    assert sum(f["area_m2"] for f in saved["fields"]) == pytest.approx(saved["whole"]["area_m2"])


def test_a_field_in_wgs84_is_reprojected_onto_the_same_pixels(tmp_path: Path) -> None:
    labels = _labels()
    corners = [(101, 40), (334, 40), (334, 251), (101, 251)]  # pixel edges: half a pixel from any centre
    xs, ys = zip(*[_pixels(c, r) for c, r in corners])
    lons, lats = transform_points(UTM, "EPSG:4326", xs, ys)
    document = {
        "type": "FeatureCollection",  # no "crs": RFC 7946 longitude, latitude
        "features": [{"type": "Feature", "id": "plot 7", "geometry": _polygon(list(zip(lons, lats)))}],
    }
    (tmp_path / "f.geojson").write_text(json.dumps(document))
    report = write_coverage(_write_map(tmp_path / "map.tif", labels), tmp_path / "out", CLASSES, tmp_path / "f.geojson")
    assert 8.99 < lons[0] < 9.01 and 45.0 < lats[0] < 45.2
    assert report.fields["plot 7"].counts == _counts(labels[40:251, 101:334])


def test_weed_patches_are_geojson_polygons_filtered_by_area(tmp_path: Path) -> None:
    labels = _labels()
    report = write_coverage(
        _write_map(tmp_path / "map.tif", labels), tmp_path / "out", CLASSES, polygons=True, min_patch_area_m2=0.03
    )
    collection = json.loads((tmp_path / "out" / "patches.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32632"
    areas = sorted(f["properties"]["area_m2"] for f in collection["features"])
    assert areas == pytest.approx([0.04, 0.16, 0.32])  # the 1-4 px weeds (< 0.03 m²) are left out
    assert report.patches == {"file": "patches.geojson", "class": "weed", "count": 3, "min_area_m2": 0.03}
    holed = max(collection["features"], key=lambda f: f["properties"]["area_m2"])
    assert len(holed["geometry"]["coordinates"]) == 2  # outer ring and the soil hole
    for feature in collection["features"]:
        assert feature["geometry"]["type"] == "Polygon" and feature["properties"]["class"] == "weed"
        for ring in feature["geometry"]["coordinates"]:
            assert ring[0] == ring[-1] and len(ring) >= 4
            assert all(WEST <= x <= WEST + 500 * PIXEL and NORTH - 300 * PIXEL <= y <= NORTH for x, y in ring)
    assert not list((tmp_path / "out").glob(".*")) and not list(tmp_path.glob(".*"))  # no mask, no staging


def test_a_png_gives_counts_and_shares_without_areas(tmp_path: Path) -> None:
    from PIL import Image

    labels = np.minimum(_labels(), 2)
    Image.fromarray(labels).save(tmp_path / "map.png")
    report = write_coverage(tmp_path / "map.png", tmp_path / "out", None)
    assert report.class_names == ["0", "1", "2"] and report.whole.counts == np.bincount(labels.ravel()).tolist()
    saved = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert saved["pixel_area_m2"] is None and "no georeference" in saved["areas"]
    assert saved["whole"]["classes"][2]["area_m2"] is None


def test_cli_writes_the_tables_and_refuses_to_overwrite(tmp_path: Path, runner) -> None:
    path = _write_map(tmp_path / "map.tif", _labels())
    args = ["coverage", str(path), "--out", str(tmp_path / "out"), "--classes", "soil,crop,weed", "--polygons"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "weed patches of 0.01 m² or more" in result.stdout and "coverage.csv" in result.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_a_geographic_raster_has_ellipsoidal_areas(tmp_path: Path) -> None:
    """A global 1-degree raster in WGS 84: its pixels add up to the ellipsoid's surface, 510 065 621.7 km²
    (a published constant), and a 1° band at 45°N matches a numerical integral of the area element."""
    labels = np.zeros((180, 360), np.uint8)
    labels[44, :] = 1  # the band from 46°N down to 45°N
    with rasterio.open(
        tmp_path / "globe.tif", "w", driver="GTiff", width=360, height=180, count=1, dtype="uint8",
        crs="EPSG:4326", transform=from_origin(-180, 90, 1, 1),
    ) as dataset:  # fmt: skip
        dataset.write(labels, 1)
    report = write_coverage(tmp_path / "globe.tif", tmp_path / "out", ["rest", "band"])
    assert report.whole.area_m2 is not None
    assert sum(report.whole.area_m2) == pytest.approx(5.100656217e14, rel=1e-9)
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    lat = np.radians(np.linspace(45, 46, 200_001))
    element = a * a * (1 - e2) * np.cos(lat) / (1 - e2 * np.sin(lat) ** 2) ** 2  # M·N·cos φ per radian²
    integral = float(np.sum((element[1:] + element[:-1]) / 2 * np.diff(lat))) * 2 * math.pi
    assert report.whole.area_m2[1] == pytest.approx(integral, rel=1e-8)
    assert "ellipsoid" in json.loads((tmp_path / "out" / "coverage.json").read_text())["areas"]


def test_patches_in_a_geographic_raster_measure_what_their_pixels_do(tmp_path: Path) -> None:
    labels = _labels()
    step = 2.5e-7  # degrees: about 2.8 cm north-south
    with rasterio.open(
        tmp_path / "map.tif", "w", driver="GTiff", width=500, height=300, count=1, dtype="uint8", nodata=NODATA,
        crs="EPSG:4326", transform=from_origin(9.0, 45.1, step, step),
    ) as dataset:  # fmt: skip
        dataset.write(labels, 1)
    report = write_coverage(tmp_path / "map.tif", tmp_path / "out", CLASSES, polygons=True, min_patch_area_m2=0.03)
    collection = json.loads((tmp_path / "out" / "patches.geojson").read_text())
    rows_m2 = report.area.rows_m2(0, 300)
    expected = sorted(
        [
            10 * rows_m2[150:160].sum(),
            20 * rows_m2[50:70].sum(),
            30 * rows_m2[200:230].sum() - 10 * rows_m2[210:220].sum(),
        ]
    )
    assert sorted(f["properties"]["area_m2"] for f in collection["features"]) == pytest.approx(expected, abs=2e-6)
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4326"


@pytest.mark.data
def test_cwfid_annotations_as_a_field_map(tmp_path: Path) -> None:
    """Two real CWFID annotations side by side (soil, crop, weed by colour) as a georeferenced map."""
    from PIL import Image

    folder = SHARED / "cwfid" / "annotations"
    if not folder.is_dir():
        pytest.skip(f"real data set {folder} not present")
    rgb = np.concatenate([np.asarray(Image.open(folder / f"{i:03d}_annotation.png").convert("RGB")) for i in (2, 5)], 1)
    labels = np.where(rgb[..., 1] == 255, 1, np.where(rgb[..., 0] == 255, 2, 0)).astype(np.uint8)
    height, width = labels.shape
    halves = {"a": [(0, 0), (1296.4, 0), (1296.4, height), (0, height)],
              "b": [(1296.4, 0), (width, 0), (width, height), (1296.4, height)]}  # fmt: skip
    report = write_coverage(
        _write_map(tmp_path / "map.tif", labels), tmp_path / "out", CLASSES, _fields(tmp_path / "f.geojson", halves)
    )
    assert report.whole.counts == _counts(labels)
    assert [t.counts for t in report.fields.values()] == [_counts(labels[:, :1296]), _counts(labels[:, 1296:])]


# --- the GeoJSON fields parser ----------------------------------------------------------------------

coordinate = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
ring = st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=6).map(lambda p: [*map(list, p), list(p[0])])
polygon = st.lists(ring, min_size=1, max_size=2)
geometry = polygon.map(lambda c: {"type": "Polygon", "coordinates": c}) | st.lists(polygon, min_size=1, max_size=2).map(
    lambda c: {"type": "MultiPolygon", "coordinates": c}
)
GEOJSON_KEYS = ["type", "features", "geometry", "coordinates", "properties", "name", "id", "crs"]
anything = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_subnormal=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(GEOJSON_KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
FAST = settings(max_examples=40, deadline=None)


@FAST
@given(st.lists(geometry, min_size=1, max_size=4), st.booleans())
def test_fields_parse_into_what_they_say(geometries: list[dict], by_id: bool) -> None:
    key = "id" if by_id else "name"
    features = [{"type": "Feature", "properties": {key: f"f{i}"}, "geometry": g} for i, g in enumerate(geometries)]
    parsed = fields_from_text(json.dumps({"type": "FeatureCollection", "features": features}), Path("f.geojson"))
    assert parsed.crs == RFC7946_CRS
    assert [f.name for f in parsed.fields] == [f"f{i}" for i in range(len(geometries))]
    assert [f.geometry for f in parsed.fields] == geometries


@FAST
@given(anything)
def test_any_json_is_fields_or_one_line(document: object) -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    for value in (
        document,
        {"type": "FeatureCollection", "features": [document]},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": document}},
        {"type": "Feature", "geometry": square, "properties": document, "crs": document},
        {"type": "Feature", "geometry": square, "crs": {"type": "name", "properties": document}},
    ):
        try:
            fields_from_text(json.dumps(value), Path("f.geojson"))
        except SegdeployError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("f.geojson: ")


def test_a_coordinate_no_float_holds_is_one_line() -> None:
    ring = f"[[0, 0], [1{'0' * 400}, 0], [1, 1], [0, 0]]"  # before: OverflowError from math.isfinite
    text = f'{{"type": "Feature", "geometry": {{"type": "Polygon", "coordinates": [{ring}]}}}}'
    with pytest.raises(SegdeployError, match="is not \\[x, y\\] in finite numbers"):
        fields_from_text(text, Path("f.geojson"))


@FAST
@given(st.text(max_size=40))
def test_any_text_is_fields_or_one_line(text: str) -> None:
    try:
        fields_from_text(text, Path("f.geojson"))
    except SegdeployError as exc:
        assert "\n" not in str(exc)
