"""segdeploy predict: class-index palette PNG masks (and colour overlays) for images, folders and videos."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..backends import open_backend
from ..backends.base import Backend
from ..config import parse_size
from ..data.masks import encode_palette_png
from ..errors import SegdeployError
from ..files import refuse_overwrite, require_folder, staged_files, write_atomic
from ..meta import AcceptedShapes
from ..runtime.segmenter import segment_frames
from .inputs import Source, collect_sources
from .overlay import overlay, with_legend

WorkingSize = tuple[int, int] | Literal["recipe", "native"]


@dataclass
class PredictResult:
    masks: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)


def segment(backend: Backend, frame: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class map (H, W) of one uint8 RGB frame at its own resolution, worked on at `size` when given."""
    return segment_frames(backend, frame[None], size)[0][0].astype(np.uint8)


def _refuse_existing(sources: list[Source], folders: list[Path], force: bool) -> None:
    for folder in folders:
        for source in sources:
            stem = glob.escape(source.path.stem)
            refuse_overwrite(sorted(folder.glob(f"{stem}_[0-9]*.png" if source.video else f"{stem}.png"))[:1], force)


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
) -> PredictResult:
    """Write OUT/masks/NAME.png (palette PNG: pixel = class index, palette = class colours) per image or
    video frame, and with `with_overlay` OUT/overlays/NAME.png (frame, colours at `alpha`, legend).
    `size`: the working resolution, 'HxW', 'recipe' (the model's input size) or 'native' (the frame's own)."""
    fixed = None if size in ("recipe", "native") else size if isinstance(size, tuple) else parse_size(size)
    if not 0.0 <= alpha <= 1.0:
        raise SegdeployError(f"--alpha {alpha}: expected a number from 0 to 1")
    require_folder(out)
    sources = collect_sources(inputs)
    folders = [Path("masks")] + ([Path("overlays")] if with_overlay else [])
    for folder in folders:
        require_folder(out / folder)
    _refuse_existing(sources, [out / folder for folder in folders], force)
    with open_backend(artifact) as backend:
        meta = backend.meta
        working = meta.recipe.input_size if size == "recipe" else fixed
        if working is not None:  # refused before any work, as bench does: the graph's and the export's ranges
            for accepted in (backend.accepted_shapes(), AcceptedShapes.of_export(meta.recipe.export)):
                accepted.check_size(1, *working, f"--size {working[0]}x{working[1]}")
        result = PredictResult()
        columns = (TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, disable=not show_progress) as progress, staged_files(out) as staging:
            task = progress.add_task("predict", total=sum(s.frame_count() for s in sources) or None)
            for source in sources:
                for name, frame in source.frames():
                    labels = segment(backend, frame, working)
                    _save_png(encode_palette_png(labels, meta.colors), staging / folders[0] / f"{name}.png")
                    result.masks.append(out / folders[0] / f"{name}.png")
                    if with_overlay:
                        picture = with_legend(overlay(frame, labels, meta.colors, alpha), meta.class_names, meta.colors)
                        _save_png(picture, staging / folders[1] / f"{name}.png")
                        result.overlays.append(out / folders[1] / f"{name}.png")
                    progress.advance(task)
        return result
