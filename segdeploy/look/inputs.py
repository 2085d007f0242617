"""What predict reads: image files, folders of them, and video files (through OpenCV, when installed)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.masks import as_rgb, open_image
from ..errors import SegdeployError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass(frozen=True)
class Source:
    """One input file; a video yields many frames."""

    path: Path
    video: bool

    def frame_count(self) -> int:
        if not self.video:
            return 1
        capture = _open_video(self.path)
        count = int(capture.get(_cv2(self.path).CAP_PROP_FRAME_COUNT))
        capture.release()
        return max(count, 0)

    def frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """(output name, uint8 RGB frame) pairs: the file's stem, or stem_NNNNNN for video frames. A video
        that ends before the frame count its header announces is refused (truncated: its last frames may
        be garbage) once its readable frames are through, so that predict writes nothing from it."""
        if not self.video:
            yield self.path.stem, read_image(self.path)
            return
        cv2 = _cv2(self.path)
        announced = self.frame_count()
        capture = _open_video(self.path)
        index = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield f"{self.path.stem}_{index:06d}", np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise SegdeployError(f"{self.path}: unreadable video (no frame could be decoded)")
        if index < announced:
            raise SegdeployError(
                f"{self.path}: video ended after {index} of the {announced} frames its header announces "
                "(truncated?); re-encode it (ffmpeg -i IN OUT) to predict the frames it holds"
            )


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), upright by its EXIF orientation; greyscale (8 or 16 bits,
    float 0..1) and RGBA are converted."""
    return np.asarray(as_rgb(open_image(path), path), dtype=np.uint8).copy()


def _cv2(path: Path) -> Any:
    # FFmpeg's own log lines (e.g. "moov atom not found") would precede segdeploy's one-line message
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
    except ImportError:
        raise SegdeployError(
            f"{path}: reading video needs OpenCV: pip install opencv-python-headless (or segdeploy[video])"
        ) from None
    return cv2


def _open_video(path: Path) -> Any:
    capture = _cv2(path).VideoCapture(str(path))
    if not capture.isOpened():
        raise SegdeployError(f"{path}: unreadable video (OpenCV cannot open it)")
    return capture


def _source(path: Path) -> Source:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        # a file that is no image, or a truncated one, fails here, before any work; a TIFF may be an
        # orthomosaic read by windows later (look/tiled.py), so only its header is read
        open_image(path, load=suffix not in (".tif", ".tiff")).close()
        return Source(path, video=False)
    if suffix in VIDEO_SUFFIXES:
        _open_video(path).release()  # fails here, before any work, without OpenCV or with a broken file
        return Source(path, video=True)
    raise SegdeployError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}) or a video ({', '.join(VIDEO_SUFFIXES)})")


def _folder_sources(folder: Path, log: Callable[[str], None]) -> list[Source]:
    """The images and videos directly inside `folder`, sorted by name. Its sub-folders and hidden files
    with an image or video suffix (macOS's `._NAME.jpg`) are skipped with one line each, files of other
    types are ignored, and an unreadable image or video fails here, before anything is written."""
    sources: list[Source] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            log(f"skipped {path}: a folder (predict reads the files directly inside {folder})")
        elif path.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            continue
        elif path.name.startswith("."):
            log(f"skipped {path}: a hidden file")
        else:
            sources.append(_source(path))
    if not sources:
        raise SegdeployError(f"{folder}: folder holds no images or videos")
    return sources


def collect_sources(paths: list[Path], log: Callable[[str], None] = print) -> list[Source]:
    """Image and video files, and the ones directly inside folders (sorted by name; `log` says what in
    them is skipped)."""
    sources: list[Source] = []
    for path in paths:
        if path.is_dir():
            sources += _folder_sources(path, log)
        elif path.is_file():
            sources.append(_source(path))
        else:
            raise SegdeployError(f"{path}: file not found")
    if not sources:
        raise SegdeployError("no input given: pass images, folders or video files")
    stems: dict[str, Path] = {}
    for source in sources:
        other = stems.setdefault(source.path.stem, source.path)
        if other != source.path:
            raise SegdeployError(f"{source.path}: same name as {other}; their masks would overwrite each other")
    _refuse_frame_names(sources)
    return sources


def _refuse_frame_names(sources: list[Source]) -> None:
    """An image named like a video's frame (x_000003.png beside x.mp4) would get the same mask name."""
    for video in (s for s in sources if s.video):
        frame_name = re.compile(re.escape(video.path.stem) + r"_\d{6,}")
        for image in (s for s in sources if not s.video and frame_name.fullmatch(s.path.stem)):
            raise SegdeployError(
                f"{image.path}: its mask {image.path.stem}.png would have the name of a frame of {video.path}; "
                "rename one of them"
            )
