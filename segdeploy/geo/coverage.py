"""Coverage, what agronomists buy: per-class pixel counts, shares of the valid pixels and areas (m², ha)
of a class-map raster, for the whole raster and per field, read band by band (never whole), written
as coverage.json and coverage.csv; optionally the weed patches as GeoJSON (geo.patches)."""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegdeployError
from ..files import refuse_overwrite, require_folder, staged_files, write_atomic, write_json
from ..libraries import quiet_logs
from .fields import Field, read_fields, reproject_fields
from .library import gdal_env, require_rasterio
from .patches import MIN_PATCH_AREA_M2, write_patches
from .pixel_area import PixelArea, pixel_area

FORMAT = "segdeploy.coverage/1"
BAND_PIXELS = 1 << 24  # pixels per band read: full-width rows, a whole number of the raster's blocks
CSV_COLUMNS = ("field", "class", "class_index", "pixels", "share", "area_m2", "area_ha")
PATCHES = "patches.geojson"


@dataclass(frozen=True)
class CoverageRequest:
    """What `predict` measures of the class map it writes: write_coverage's options."""

    fields: Path | None = None
    polygons: bool = False
    min_patch_area_m2: float = MIN_PATCH_AREA_M2
    patch_class: str = "weed"

    @property
    def needs_areas(self) -> bool:
        return self.fields is not None or self.polygons

    def files(self, out_dir: Path) -> list[Path]:
        """The files write_coverage writes into `out_dir`."""
        return coverage_files(out_dir, self.polygons)

    def check(self) -> None:
        """Before any work: rasterio there, the fields readable, the patch area sane."""
        require_rasterio("coverage")
        if not self.min_patch_area_m2 >= 0:
            raise SegdeployError(f"--min-patch-area {self.min_patch_area_m2}: must be 0 or more (m²)")
        if self.fields is not None:
            read_fields(self.fields)


def coverage_files(out_dir: Path, polygons: bool) -> list[Path]:
    return [out_dir / "coverage.json", out_dir / "coverage.csv"] + ([out_dir / PATCHES] if polygons else [])


@dataclass(frozen=True)
class Tally:
    """Per-class pixel counts and areas in m² (None where the raster has no areas) of one scope."""

    counts: list[int]
    area_m2: list[float] | None

    def rows(self, class_names: list[str]) -> list[dict[str, Any]]:
        """One row per class: pixels, share of the valid pixels, area (m², ha)."""
        valid = sum(self.counts)
        areas = self.area_m2 if self.area_m2 is not None else [None] * len(self.counts)
        return [
            {
                "class": name,
                "class_index": index,
                "pixels": pixels,
                "share": pixels / valid if valid else None,
                "area_m2": None if m2 is None else round(m2, 6),  # float noise off: mm² still show
                "area_ha": None if m2 is None else round(m2 / 1e4, 10),
            }
            for index, (name, pixels, m2) in enumerate(zip(class_names, self.counts, areas))
        ]

    def summary(self, class_names: list[str]) -> dict[str, Any]:
        area = None if self.area_m2 is None else round(sum(self.area_m2), 6)
        return {"valid_pixels": sum(self.counts), "area_m2": area, "classes": self.rows(class_names)}


@dataclass(frozen=True)
class CoverageReport:
    """The whole raster's tally and each field's (by name); `area` says how pixels were measured."""

    class_map: Path
    class_names: list[str]
    crs: str | None
    area: PixelArea
    nodata_pixels: int
    whole: Tally
    fields: dict[str, Tally] = field(default_factory=dict)
    fields_without_pixels: list[str] = field(default_factory=list)
    patches: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "class_map": str(self.class_map),
            "crs": self.crs,
            "pixel_area_m2": self.area.m2,  # None in a geographic CRS: there each row has its own
            "areas": _how_measured(self.area),
            "nodata_pixels": self.nodata_pixels,
            "whole": self.whole.summary(self.class_names),
            "fields": [{"name": name, **tally.summary(self.class_names)} for name, tally in self.fields.items()],
            "fields_without_pixels": self.fields_without_pixels,
            "patches": self.patches,
        }

    def to_csv(self) -> str:
        """The tables as CSV: the whole raster (empty `field`), then each field."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for name, tally in [("", self.whole), *self.fields.items()]:
            for row in tally.rows(self.class_names):
                writer.writerow({"field": name, **{k: "" if v is None else v for k, v in row.items()}})
        return buffer.getvalue()


def _how_measured(area: PixelArea) -> str:
    if not area.known:
        return f"none: the raster {area.missing}"
    if area.ellipsoid is None:
        return "projected CRS: |det(geotransform)| in the CRS's unit, converted to m²"
    return "geographic CRS: each row's pixel area on the CRS's ellipsoid (cylindrical equal-area, exact)"


def write_coverage(
    class_map: Path,
    out_dir: Path,
    class_names: list[str] | None = None,
    fields: Path | None = None,
    polygons: bool = False,
    min_patch_area_m2: float = MIN_PATCH_AREA_M2,
    patch_class: str = "weed",
    force: bool = False,
) -> CoverageReport:
    """Coverage of the single-band uint8 class map `class_map` (GeoTIFF, PNG: anything GDAL reads),
    its nodata/mask pixels left out, into `out_dir`: coverage.json, coverage.csv and with `polygons`
    patches.geojson (the `patch_class` regions of at least `min_patch_area_m2`, in the raster's CRS).
    `class_names` None: the class indices as names. Areas need a CRS (geo.pixel_area); `fields`
    (GeoJSON, reprojected to the raster's CRS) and `polygons` need areas. A pixel is in a field when
    its centre is."""
    require_rasterio("coverage")
    if class_names is not None and (not all(class_names) or len(set(class_names)) < len(class_names)):
        raise SegdeployError(f"--classes {','.join(class_names)}: class names must be non-empty and distinct")
    if not min_patch_area_m2 >= 0:
        raise SegdeployError(f"--min-patch-area {min_patch_area_m2}: must be 0 or more (m²)")
    field_set = read_fields(fields) if fields is not None else None
    files = coverage_files(out_dir, polygons)
    require_folder(out_dir)
    refuse_overwrite(files, force)
    # rasterio.Env routes GDAL's messages to logging (muted here): the CLI's one line stays the only one.
    with quiet_logs("rasterio"), gdal_env("coverage"), _open_class_map(class_map) as source:
        area = pixel_area(source.crs, source.transform, source.height)
        if not area.known and (fields is not None or polygons):
            asked = " and ".join(n for n, on in (("--fields", fields), ("--polygons", polygons)) if on)
            raise SegdeployError(f"{class_map}: {area.missing}; {asked} need areas (run without for counts and shares)")
        shapes = reproject_fields(field_set, source.crs) if field_set is not None else []
        if field_set is not None:
            _check_overlap(shapes, source, field_set.path, class_map)
        patch_index = None
        if polygons:
            if class_names is None or patch_class not in class_names:
                known = ", ".join(class_names) if class_names else "only indices, no names given"
                raise SegdeployError(f"{class_map}: no class named {patch_class!r} for --polygons (classes: {known})")
            patch_index = class_names.index(patch_class)
        with staged_files(out_dir, refuse=lambda: refuse_overwrite(files, force)) as staging:
            mask = staging / ".patch-mask.tif" if patch_index is not None else None
            whole, per_field, inside, nodata = _count(source, area, shapes, mask, patch_index)
            names = _class_names(whole.counts.tolist(), class_names, class_map)
            report = CoverageReport(
                class_map, names, _crs_string(source.crs), area, nodata, whole.tally(len(names)),
                {f.name: c.tally(len(names)) for f, c in zip(shapes, per_field)},
                [f.name for f, n in zip(shapes, inside) if n == 0], None, files,
            )  # fmt: skip
            if mask is not None:
                epsg = source.crs.to_epsg()
                crs_name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else source.crs.to_wkt()
                kept = write_patches(mask, staging / PATCHES, patch_class, area, min_patch_area_m2, crs_name)
                mask.unlink()
                patches = {"file": PATCHES, "class": patch_class, "count": kept, "min_area_m2": min_patch_area_m2}
                report = CoverageReport(**{**report.__dict__, "patches": patches})
            write_json(staging / "coverage.json", report.to_dict())
            csv_text = report.to_csv()
            write_atomic(staging / "coverage.csv", lambda tmp: tmp.write_text(csv_text, encoding="utf-8"))
    return report


@contextlib.contextmanager
def _open_class_map(path: Path) -> Iterator[Any]:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    if not path.is_file():
        raise SegdeployError(f"{path}: file not found" if not path.exists() else f"{path}: is not a file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a PNG: counts and shares, no areas
        try:
            source = rasterio.open(path)
        except RasterioIOError as exc:
            raise SegdeployError(f"{path}: not a raster GDAL can read ({exc})") from None
    with source:
        if source.count != 1 or source.dtypes[0] != "uint8":
            raise SegdeployError(
                f"{path}: {source.count} band(s) of {source.dtypes[0]}; a class map is one uint8 band of class indices"
            )
        yield source


def _windows(source: Any) -> Iterator[Any]:
    """Full-width bands of whole blocks (the raster's block height, rasterio's `block_shapes`), about
    BAND_PIXELS each: memory is bounded by the band, whatever the raster's height."""
    from rasterio.windows import Window

    block_height = source.block_shapes[0][0]
    rows = block_height * max(1, BAND_PIXELS // (block_height * source.width))
    for top in range(0, source.height, rows):
        yield Window(0, top, source.width, min(rows, source.height - top))


class _Counter:
    """Per-class counts (and, in a geographic CRS, areas row by row) accumulated band by band."""

    def __init__(self, area: PixelArea) -> None:
        self.area = area
        self.counts = np.zeros(256, np.int64)
        self.m2 = np.zeros(256, np.float64)

    def add(self, labels: np.ndarray, selected: np.ndarray, top: int) -> None:
        if self.area.ellipsoid is None:
            self.counts += np.bincount(labels[selected], minlength=256)
            return
        for row_m2, row, chosen in zip(self.area.rows_m2(top, labels.shape[0]), labels, selected):
            counts = np.bincount(row[chosen], minlength=256)
            self.counts += counts
            self.m2 += row_m2 * counts

    def tally(self, classes: int) -> Tally:
        counts = self.counts[:classes]
        if not self.area.known:
            return Tally(counts.tolist(), None)
        m2 = counts * self.area.m2 if self.area.m2 is not None else self.m2[:classes]
        return Tally(counts.tolist(), m2.tolist())


def _count(
    source: Any, area: PixelArea, fields: list[Field], mask_path: Path | None, patch_index: int | None
) -> tuple[_Counter, list[_Counter], list[int], int]:
    """Counters of the valid pixels, of those in each field, the pixels (valid or not) whose centres
    lie in each field, and the invalid pixels; writes the 0/1 patch mask on the way."""
    from rasterio.enums import MaskFlags
    from rasterio.features import bounds, geometry_mask

    all_valid = MaskFlags.all_valid in source.mask_flag_enums[0]  # else nodata, an internal mask or alpha
    boxes = [bounds(f.geometry) for f in fields]
    whole, per_field = _Counter(area), [_Counter(area) for _ in fields]
    inside = [0] * len(fields)
    nodata = 0
    with contextlib.ExitStack() as stack:
        mask_out = None if mask_path is None else stack.enter_context(_mask_writer(source, mask_path))
        for window in _windows(source):
            labels = source.read(1, window=window)
            valid = np.ones(labels.shape, bool) if all_valid else source.read_masks(1, window=window) > 0
            nodata += int(labels.size - np.count_nonzero(valid))
            whole.add(labels, valid, window.row_off)
            transform = source.window_transform(window)
            box = _box(transform, window.height, window.width)
            for number, (shape, field_box) in enumerate(zip(fields, boxes)):
                if not _intersects(box, field_box):
                    continue
                within = geometry_mask([shape.geometry], labels.shape, transform, invert=True)  # pixel centres
                inside[number] += int(np.count_nonzero(within))
                per_field[number].add(labels, within & valid, window.row_off)
            if mask_out is not None:
                mask_out.write(((labels == patch_index) & valid).astype(np.uint8), 1, window=window)
    return whole, per_field, inside, nodata


@contextlib.contextmanager
def _mask_writer(source: Any, path: Path) -> Iterator[Any]:
    import rasterio

    profile = {
        "driver": "GTiff", "width": source.width, "height": source.height, "count": 1, "dtype": "uint8",
        "crs": source.crs, "transform": source.transform, "tiled": True, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as mask:
        yield mask


def _box(transform: Any, height: int, width: int) -> tuple[float, float, float, float]:
    """The bounding box (min x, min y, max x, max y) of a window's four corners."""
    corners = [transform @ (c, r) for c in (0, width) for r in (0, height)]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _check_overlap(fields: list[Field], source: Any, fields_path: Path, class_map: Path) -> None:
    from rasterio.features import bounds

    raster = _box(source.transform, source.height, source.width)
    if not any(_intersects(raster, bounds(f.geometry)) for f in fields):
        box = ", ".join(f"{v:.1f}" for v in raster)
        raise SegdeployError(
            f"{fields_path}: none of its {len(fields)} fields overlaps {class_map} (bounds {box} in "
            f'{_crs_string(source.crs)}); wrong file, or a wrong "crs" in it?'
        )


def _class_names(counts: list[int], names: list[str] | None, class_map: Path) -> list[str]:
    present = [i for i, n in enumerate(counts) if n]
    top = present[-1] if present else 0
    if names is None:
        return [str(i) for i in range(top + 1)]
    if top >= len(names):
        raise SegdeployError(
            f"{class_map}: holds class index {top} but {len(names)} class names are given ({', '.join(names)})"
        )
    return list(names)


def _crs_string(crs: Any) -> str | None:
    return None if crs is None else str(crs.to_string())
