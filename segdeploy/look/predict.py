"""segdeploy predict: class-index palette PNG masks (and colour overlays) for images, folders and videos."""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..backends import open_backend
from ..backends.base import Backend
from ..backends.table import backend_choice
from ..config import parse_size
from ..data.masks import encode_palette_png
from ..errors import SegdeployError
from ..files import refuse_overwrite, require_folder, staged_files, write_atomic
from ..geo.coverage import CoverageReport, CoverageRequest, write_coverage
from ..meta import AcceptedShapes
from ..runtime.frames import as_rgb_batch, channel_order
from ..runtime.segmenter import segment_frames
from ..runtime.tiling import plan_tiling
from .inputs import Source, collect_sources
from .overlay import overlay, with_legend
from .tiled import RASTER_SUFFIXES, predict_raster, preview_picture, segment_frame_tiled, too_large

WorkingSize = tuple[int, int] | Literal["recipe", "native"]


@dataclass
class PredictResult:
    masks: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    previews: list[Path] = field(default_factory=list)  # of class-map GeoTIFFs
    coverage: CoverageReport | None = None


def segment(backend: Backend, frame: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class map (H, W) of one uint8 RGB frame at its own resolution, worked on at `size` when given."""
    return segment_frames(backend, frame[None], size)[0][0].astype(np.uint8)


def _refuse_existing(sources: list[Source], folders: list[Path], force: bool) -> None:
    for folder in folders:
        for source in sources:
            stem = glob.escape(source.path.stem)
            refuse_overwrite(sorted(folder.glob(f"{stem}_[0-9]*.png" if source.video else f"{stem}.png"))[:1], force)
            refuse_overwrite([folder / f"{source.path.stem}.tif"], force)


def _save_png(image: Image.Image, target: Path) -> Path:
    return write_atomic(target, lambda tmp: image.save(tmp, format="PNG"))


def predict(
    artifact: Path,
    inputs: list[Path],
    out: Path,
    with_overlay: bool = False,
    alpha: float = 0.5,
    size: WorkingSize | str = "recipe",
    force: bool = False,
    show_progress: bool = True,
    channels: str = "rgb",
    backend: str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    coverage: CoverageRequest | None = None,
    log: Callable[[str], None] = print,
) -> PredictResult:
    """Write OUT/masks/NAME.png (palette PNG: pixel = class index, palette = class colours) per image or
    video frame, and with `with_overlay` OUT/overlays/NAME.png (frame, colours at `alpha`, legend).
    `size`: the working resolution, 'HxW', 'recipe' (the model's input size) or 'native' (the frame's own).
    `channels`: the order the files' pixel data holds, 'rgb' (as every image and video file stores it) or
    'bgr' (files written from OpenCV frames by a library that took them for RGB): swapped before the model.
    `backend`: NAME[:PRECISION] for an artifact several backends run (ONNX: onnxruntime, openvino).
    Images taller or wider than the model takes (unless `size` is HxW), and all with `tile`, are tiled at
    their own resolution (runtime/tiling.py; `tile`, `overlap` in pixels); a TIFF is then read by windows
    (its bands by their order, red first: `channels` applies to the other files) and its class map written
    as OUT/masks/NAME.tif (GeoTIFF) with OUT/previews/NAME.png, and the overlays of other tiled images are
    at most 2048 px on their longer side. `coverage`: also OUT/coverage.json and coverage.csv (and with
    polygons OUT/patches.geojson) of the one image's class map (geo/coverage.py); fields and polygons need
    areas, so a georeferenced TIFF, which is then always read by windows into a class-map GeoTIFF. `log`
    says which entries of an input folder are skipped (sub-folders, hidden files)."""
    order = channel_order(channels, "--channels")
    fixed = None if size in ("recipe", "native") else size if isinstance(size, tuple) else parse_size(size)
    if not 0.0 <= alpha <= 1.0:
        raise SegdeployError(f"--alpha {alpha}: expected a number from 0 to 1")
    if tile is not None and fixed is not None:
        raise SegdeployError(f"--tile with --size {size}: tiles run at the image's own resolution; drop one")
    require_folder(out)
    sources = collect_sources(inputs, log)
    folders = [Path("masks")] + ([Path("overlays")] if with_overlay else [])
    for folder in [*folders, Path("previews")]:
        require_folder(out / folder)

    def refuse() -> None:  # before the work, and again under the writer's lock
        _refuse_existing(sources, [out / folder for folder in [*folders, Path("previews")]], force)
        refuse_overwrite(coverage.files(out) if coverage is not None else [], force)

    refuse()
    if coverage is not None:
        _check_coverage(sources, coverage)
    by_windows = coverage is not None and coverage.needs_areas
    with open_backend(artifact, **(backend_choice(backend) if backend else {})) as runner:
        meta = runner.meta
        shapes = [runner.accepted_shapes(), AcceptedShapes.of_export(meta.recipe.export)]
        if tile is not None or overlap is not None:  # refused before any work
            plan_tiling(shapes, (tile or 0, tile or 0), tile, overlap)
        working = meta.recipe.input_size if size == "recipe" else fixed
        if working is not None:  # refused before any work, as bench does: the graph's and the export's ranges
            for accepted in shapes:
                accepted.check_size(1, *working, f"--size {working[0]}x{working[1]}")
        result = PredictResult()
        columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, disable=not show_progress) as progress, staged_files(out, refuse=refuse) as staging:
            task = progress.add_task("predict", total=sum(s.frame_count() for s in sources) or None)
            for source in sources:
                path = source.path
                if path.suffix.lower() in RASTER_SUFFIXES and (
                    tile or by_windows or not fixed and too_large(shapes, path)
                ):
                    mask, preview = predict_raster(runner, path, staging, shapes, tile, overlap, alpha)
                    result.masks.append(out / mask)
                    result.previews.append(out / preview)
                    progress.advance(task)
                    continue
                for name, stored in source.frames():
                    frame = as_rgb_batch(stored, order)[0]
                    tiled = tile is not None or fixed is None and too_large(shapes, frame.shape[:2])
                    labels = (
                        segment_frame_tiled(runner, frame, shapes, tile, overlap)
                        if tiled
                        else segment(runner, frame, working)
                    )
                    _save_png(encode_palette_png(labels, meta.colors), staging / folders[0] / f"{name}.png")
                    result.masks.append(out / folders[0] / f"{name}.png")
                    if with_overlay:
                        picture = (
                            preview_picture(frame, labels, meta.class_names, meta.colors, alpha)
                            if tiled
                            else with_legend(overlay(frame, labels, meta.colors, alpha), meta.class_names, meta.colors)
                        )
                        _save_png(picture, staging / folders[1] / f"{name}.png")
                        result.overlays.append(out / folders[1] / f"{name}.png")
                    progress.advance(task)
            if coverage is not None:
                class_map = staging / result.masks[0].relative_to(out)
                result.coverage = write_coverage(
                    class_map, staging, meta.class_names, coverage.fields, coverage.polygons,
                    coverage.min_patch_area_m2, coverage.patch_class, force=True,
                )  # fmt: skip
        return result


def _check_coverage(sources: list[Source], coverage: CoverageRequest) -> None:
    """Coverage is of one image's class map; areas (fields, polygons) need a TIFF that can carry a CRS."""
    coverage.check()
    if len(sources) != 1 or sources[0].video:
        names = ", ".join(str(s.path) for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        raise SegdeployError(
            f"--coverage/--fields/--polygons measure one image's class map, got {names}: "
            "predict one orthomosaic, or run 'segdeploy coverage' on each mask"
        )
    path = sources[0].path
    if coverage.needs_areas and path.suffix.lower() not in RASTER_SUFFIXES:
        raise SegdeployError(f"{path}: --fields and --polygons need areas, from a georeferenced GeoTIFF input")
