"""Tiled inference (runtime/tiling.py) and georeferenced I/O (geo/): stitched against whole-image class
maps, argmax graphs voting, memory bounded by the tile band, and a CWFID orthomosaic in a UTM CRS through
`segdeploy predict` keeping its CRS, transform and nodata."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from segdeploy.cli import app
from segdeploy.errors import SegdeployError
from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import NODATA, AcceptedShapes, IOSpec
from segdeploy.runtime import ArrayReader, Segmenter
from segdeploy.runtime.tiling import edge_weights, plan_tiling, tile_starts

from .conftest import SHARED, USER_MODEL, real_dataset
from .helpers import tiny_recipe

rasterio = pytest.importorskip("rasterio")


@pytest.fixture(scope="module")
def argmax_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny user model exported with --argmax (ends in a class map, no scores)."""
    recipe = tiny_recipe().replace(name="tiny", architecture=USER_MODEL, encoder=None)
    out = tmp_path_factory.mktemp("argmax") / "exp"
    return export_artifacts(recipe, None, out, io=IOSpec(argmax=True), log=lambda _: None).onnx


def field_frame(images: Path, height: int, width: int) -> np.ndarray:
    """A uint8 RGB frame of the data set's images side by side, cut to height x width."""
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())]
    row = np.concatenate(tiles, axis=1)
    rows = np.concatenate([row] * -(-height // row.shape[0]), axis=0)
    return np.ascontiguousarray(np.concatenate([rows] * -(-width // rows.shape[1]), axis=1)[:height, :width])


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def test_weights_cross_fade_and_drop_the_edge() -> None:
    """Across an overlap the two tiles' weights sum to 1, and the outer quarter of each gets none."""
    overlap = 32
    weights = edge_weights(128, overlap, low=True, high=True)
    assert weights[: overlap // 4].max() == 0.0 and weights[-(overlap // 4) :].max() == 0.0
    assert np.allclose(weights[:overlap] + weights[:overlap][::-1], 1.0)
    assert weights[overlap:-overlap].min() == 1.0
    assert edge_weights(128, overlap, low=False, high=False).min() == 1.0  # image borders are not tapered
    assert tile_starts(300, 128, 32) == [0, 96, 172] and tile_starts(100, 128, 32) == [0]


def test_stitched_equals_whole_image(world: dict[str, Path]) -> None:
    """An image that fits both ways: tiles of 128 with 32 px overlap (8 px dropped per edge, more than
    the tiny model's receptive context) give the whole-image class map, borders included."""
    frame = field_frame(world["images"], 256, 384)
    with Segmenter(world["onnx"]) as segment:
        whole = segment(frame)
        stitched = segment.segment_large(frame, tile=128, overlap=32)
    assert stitched is not None and stitched.dtype == np.uint8
    share = agreement(stitched, whole)
    print(f"stitched vs whole-image agreement: {share:.6f}")
    assert share == 1.0


def test_argmax_graph_votes(world: dict[str, Path], argmax_onnx: Path) -> None:
    """A graph ending in an argmax cannot blend scores: tiles vote with the same weights, and agree
    with the whole image as the score graph does."""
    frame = field_frame(world["images"], 192, 320)
    with Segmenter(argmax_onnx) as segment:
        assert segment.meta.io.argmax
        whole = segment(frame)
        stitched = segment.segment_large(frame, tile=96, overlap=32)
    assert stitched is not None
    share = agreement(stitched, whole)
    print(f"argmax graph, stitched vs whole-image agreement: {share:.6f}")
    assert share == 1.0


def test_memory_is_bounded_by_the_band(world: dict[str, Path]) -> None:
    """Bands reach the writer top to bottom, none taller than a tile, and no allocation during tiling
    comes near the image's float scores: tracemalloc (which numpy reports its buffers to) peaks below a
    quarter of classes x H x W float32."""
    height, width, tile = 4096, 192, 64
    frame = field_frame(world["images"], height, width)

    class Bands:
        def __init__(self) -> None:
            self.rows: list[tuple[int, int]] = []
            self.classes = np.zeros((height, width), np.uint8)

        def write(self, row: int, classes: np.ndarray, valid: np.ndarray) -> None:
            self.rows.append((row, len(classes)))
            self.classes[row : row + len(classes)] = classes

    bands = Bands()
    with Segmenter(world["onnx"]) as segment:
        reader = ArrayReader(frame)
        tracemalloc.start()
        segment.segment_large(reader, bands, tile=tile, overlap=16)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        whole_scores = segment.meta.num_classes * height * width * 4
    assert peak < whole_scores / 4, (peak, whole_scores)
    assert [row for row, _ in bands.rows] == sorted(row for row, _ in bands.rows)
    assert sum(n for _, n in bands.rows) == height and max(n for _, n in bands.rows) <= tile
    assert bands.rows[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(bands.rows, bands.rows[1:]))


def test_plan_refuses_tiles_the_model_cannot_take() -> None:
    shapes = [AcceptedShapes((1, 8), (128, 1024), (128, 1024))]
    assert plan_tiling(shapes, (20000, 10000)).tile == (1024, 1024)
    assert plan_tiling(shapes, (100, 5000), tile=512).tile == (128, 512)  # cut to the image, at least 128
    for tile, overlap, message in [(16, None, "stride"), (100, None, "stride"), (2048, None, "128 to 1024")]:
        with pytest.raises(SegdeployError, match=message):
            plan_tiling(shapes, (4000, 4000), tile, overlap)
    with pytest.raises(SegdeployError, match="--overlap 256"):
        plan_tiling(shapes, (4000, 4000), 256, 256)
    fixed = plan_tiling([AcceptedShapes((4, 4), (256, 256), (256, 256))], (1000, 1000))
    assert (fixed.batch, fixed.least, fixed.tile) == (4, 4, (256, 256))
    assert plan_tiling(shapes, (4000, 4000), 256).batch == 8  # 1 MP a batch, within the model's 8
    assert plan_tiling(shapes, (4000, 4000), 1024).batch == 1


def write_orthomosaic(path: Path, frame: np.ndarray, hole: tuple[slice, slice]) -> tuple[object, object]:
    """An RGBA GeoTIFF of `frame` in UTM zone 32N (EPSG:32632) at 5 mm a pixel, alpha 0 over `hole`."""
    from affine import Affine

    transform, crs = Affine(0.005, 0, 500_000.0, 0, -0.005, 5_700_000.0), rasterio.crs.CRS.from_epsg(32632)
    alpha = np.full(frame.shape[:2], 255, np.uint8)
    alpha[hole] = 0
    profile = {"driver": "GTiff", "height": frame.shape[0], "width": frame.shape[1], "count": 4, "dtype": "uint8"}
    profile.update(crs=crs, transform=transform, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", photometric="RGB", alpha="YES", **profile) as dataset:  # GTiff: band 4 is alpha
        dataset.write(np.concatenate([frame.transpose(2, 0, 1), alpha[None]]))
    return crs, transform


@pytest.mark.data
def test_orthomosaic_keeps_crs_transform_and_nodata(world: dict[str, Path], runner, tmp_path: Path) -> None:
    """CWFID images mosaicked into a georeferenced RGBA GeoTIFF larger than the export takes (512 px):
    predict tiles it into a class-map GeoTIFF with the same CRS and transform, nodata exactly where alpha
    is 0, the class colours as its colour table, and a preview; the classes equal the runtime's tiling
    of the same pixels in memory."""
    real_dataset("cwfid")
    frame = field_frame(SHARED / "cwfid" / "images", 966, 1800)
    hole = (slice(0, 300), slice(1400, 1800))
    ortho = tmp_path / "ortho.tif"
    crs, transform = write_orthomosaic(ortho, frame, hole)
    result = runner.invoke(app, ["predict", str(world["onnx"]), str(ortho), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "1 previews" in result.output
    with rasterio.open(tmp_path / "out" / "masks" / "ortho.tif") as mask:
        assert mask.crs == crs and mask.transform == transform
        assert mask.nodata == NODATA and mask.profile["tiled"] and mask.compression.name == "deflate"
        classes = mask.read(1)
        colormap = mask.colormap(1)
    assert (classes[hole] == NODATA).all()
    inside = np.ones(classes.shape, bool)
    inside[hole] = False
    assert (classes[inside] < 3).all()
    with Segmenter(world["onnx"]) as segment:
        expected = segment.segment_large(ArrayReader(frame, inside), tile=512)  # the export range's top
        assert colormap[1] == (*segment.colors[1], 255)
    assert expected is not None and np.array_equal(classes, expected)
    preview = Image.open(tmp_path / "out" / "previews" / "ortho.png")
    assert preview.width == 1800 and preview.height > 966  # under 2048 px: full size, legend strip below
    again = runner.invoke(app, ["predict", str(world["onnx"]), str(ortho), "--out", str(tmp_path / "out")])
    assert again.exit_code != 0 and "--force" in again.output


def test_large_png_is_tiled_and_its_overlay_downsampled(world: dict[str, Path], runner, tmp_path: Path) -> None:
    """A PNG taller than the export takes is tiled in memory (palette PNG mask at full size); --tile
    tiles any image."""
    frame = field_frame(world["images"], 2600, 200)
    Image.fromarray(frame).save(tmp_path / "tall.png")
    result = runner.invoke(
        app, ["predict", str(world["onnx"]), str(tmp_path / "tall.png"), "--out", str(tmp_path / "o"), "--overlay"]
    )
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "o" / "masks" / "tall.png"))
    assert mask.shape == (2600, 200)
    assert Image.open(tmp_path / "o" / "overlays" / "tall.png").height < 2048 + 200
    with Segmenter(world["onnx"]) as segment:
        assert np.array_equal(mask, segment.segment_large(frame))


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 3000), tile=st.integers(1, 40).map(lambda n: n * 32), overlap_seed=st.integers(0, 10**6))
def test_tiles_cover_every_pixel_with_weight(size: int, tile: int, overlap_seed: int) -> None:
    """Any image side, tile and overlap below the tile: the tiles cover every pixel, neighbours overlap
    by at least the overlap, and every pixel gets a positive total weight (so the argmax is defined)."""
    overlap = overlap_seed % tile
    starts = tile_starts(size, tile, overlap)
    length = min(tile, size)
    assert starts[0] == 0 and starts[-1] + length == max(size, length)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    total = np.zeros(max(size, length), np.float64)
    for start in starts:
        total[start : start + length] += edge_weights(length, overlap, start > 0, start + length < size)
    assert total[:size].min() > 0


def test_an_interrupted_class_map_leaves_no_file(world: dict[str, Path], tmp_path: Path) -> None:
    """A failure while tiling leaves neither the class-map GeoTIFF nor a temporary file."""
    from segdeploy.geo.raster import ClassMapWriter, RasterReader

    source = tmp_path / "in.tif"
    write_orthomosaic(source, field_frame(world["images"], 256, 256), (slice(0, 1), slice(0, 1)))

    class Failing(RasterReader):
        def read(self, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
            if row > 0:
                raise SegdeployError("the disk went away")
            return super().read(row, col, height, width)

    with Segmenter(world["onnx"]) as segment, pytest.raises(SegdeployError, match="went away"):
        with Failing(source) as reader, ClassMapWriter(tmp_path / "classes.tif", reader, segment.colors) as out:
            segment.segment_large(reader, out, tile=64, overlap=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.data
def test_predict_writes_coverage_per_field_of_the_orthomosaic(world: dict[str, Path], runner, tmp_path: Path) -> None:
    """`predict ortho.tif --fields F --polygons`: the class-map GeoTIFF, then coverage.json/csv of it (whole
    raster equal to its own counts, the two fields that split it summing to the whole) and patches.geojson,
    all in --out; a small TIFF is read by windows too, since fields need the CRS."""
    real_dataset("cwfid")
    frame = field_frame(SHARED / "cwfid" / "images", 400, 600)
    ortho = tmp_path / "ortho.tif"
    write_orthomosaic(ortho, frame, (slice(0, 50), slice(0, 50)))
    x0, y0, x_mid, x1, y1 = 500_000.0, 5_700_000.0, 500_000.0 + 300 * 0.005, 500_000.0 + 600 * 0.005, 5_698_000.0
    halves = [
        [[x0, y1], [x_mid, y1], [x_mid, y0], [x0, y0], [x0, y1]],
        [[x_mid, y1], [x1, y1], [x1, y0], [x_mid, y0], [x_mid, y1]],
    ]
    fields = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32632"}},
        "features": [
            {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
            for name, ring in zip(["west", "east"], halves)
        ],
    }
    (tmp_path / "fields.geojson").write_text(json.dumps(fields))
    out = tmp_path / "out"
    command = [
        "predict",
        str(world["onnx"]),
        str(ortho),
        "--out",
        str(out),
        "--fields",
        str(tmp_path / "fields.geojson"),
    ]
    result = runner.invoke(app, [*command, "--polygons", "--patch-class", "class1", "--min-patch-area", "0"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "masks" / "ortho.tif") as mask:
        classes = mask.read(1)
    report = json.loads((out / "coverage.json").read_text())
    counts = np.bincount(classes[classes != NODATA].ravel(), minlength=3)
    assert [row["pixels"] for row in report["whole"]["classes"]] == counts.tolist()
    assert report["nodata_pixels"] == 50 * 50
    per_field = np.sum([[row["pixels"] for row in f["classes"]] for f in report["fields"]], axis=0)
    assert per_field.tolist() == counts.tolist()
    assert (out / "coverage.csv").is_file() and json.loads((out / "patches.geojson").read_text())[
        "features"
    ] is not None
    again = runner.invoke(app, command)
    assert again.exit_code != 0 and "--force" in again.output


def test_predict_coverage_refusals_write_nothing(world: dict[str, Path], runner, tmp_path: Path) -> None:
    """Fields need a georeferenced TIFF; coverage is of one image: refused before any work, nothing written."""
    frame = field_frame(world["images"], 256, 256)
    for name in ("a.png", "b.png"):
        Image.fromarray(frame).save(tmp_path / name)
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    (tmp_path / "f.geojson").write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": square}))
    cases = [
        (
            [str(tmp_path / "a.png"), "--fields", str(tmp_path / "f.geojson")],
            "from a georeferenced GeoTIFF",
        ),
        ([str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--coverage"], "measure one image's class map"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["predict", str(world["onnx"]), *args, "--out", str(tmp_path / "out")])
        assert result.exit_code != 0 and message in " ".join(result.output.split()), result.output
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
