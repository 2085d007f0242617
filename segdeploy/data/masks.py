"""Decoding mask files into class-index arrays (index/palette PNG, RGB colour codes, binary 0/255)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps

from ..errors import SegdeployError
from .spec import DatasetSpec

PIXEL_LIMIT = 250_000_000  # images read whole through Pillow (RGB: 3 bytes a pixel, 750 MB at the limit)


@contextlib.contextmanager
def _pixel_limit_ours() -> Iterator[None]:
    """Pillow's decompression-bomb check (an error above 179 MP) replaced by PIXEL_LIMIT, checked below."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def open_image(path: Path, load: bool = True) -> Image.Image:
    """Open an image file, turned upright by its EXIF orientation (as viewers show it: a phone or drone
    JPEG stores its pixels sideways and says so in EXIF); without `load`, only its header is read (a cheap
    check that it is an image). Loading one of more than PIXEL_LIMIT pixels is refused in one line: tile
    it from a GeoTIFF instead."""
    try:
        with _pixel_limit_ours():
            image = Image.open(path)
            if load:
                if image.width * image.height > PIXEL_LIMIT:
                    image.close()
                    raise SegdeployError(
                        f"{path}: {image.width}x{image.height} pixels, more than the {PIXEL_LIMIT // 10**6} MP "
                        "read whole; write it as a tiled GeoTIFF and install segdeploy[geo] to predict it by windows"
                    )
                image.load()
    except FileNotFoundError:
        raise SegdeployError(f"{path}: file not found") from None
    except OSError as exc:
        tiff = " (Pillow reads 8- and 16-bit TIFFs and float greyscale ones: convert float RGB to 8-bit)"
        tiff = tiff if path.suffix.lower() in TIFF else ""
        raise SegdeployError(f"{path}: unreadable image ({exc}){tiff}") from None
    if load and image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        return ImageOps.exif_transpose(image)
    return image


TIFF = (".tif", ".tiff")
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _eight_bit(image: Image.Image, path: Path | None) -> np.ndarray:
    """The pixel rules of README "Pixel values" for 16-bit, 32-bit integer and float greyscale: the full
    16-bit range over 0..255 (value / 257; a fixed scale, not the image's own maximum, so every frame of a
    sequence reads alike); integers that fit 8 bits as they are; floats 0..1 times 255; anything else
    refused, never read as a black frame."""
    values = np.asarray(image).astype(np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    where = f"{path}: " if path is not None else ""
    if image.mode == "F":
        if not np.isfinite(values).all():
            raise SegdeployError(f"{where}float image holds NaN or infinite values; expected values 0..1")
        if low < 0 or high > 1:
            raise SegdeployError(f"{where}float image with values {low:g} to {high:g}; expected 0..1 (x 255)")
        return np.round(values * 255).astype(np.uint8)
    if low < 0 or high > 65535:
        raise SegdeployError(f"{where}{image.mode} image with values {low:g} to {high:g}; expected 0..65535")
    sixteen = image.mode in SIXTEEN_BIT or high > 255
    return np.round(values / 257.0 if sixteen else values).astype(np.uint8)


def as_rgb(image: Image.Image, path: Path | None = None) -> Image.Image:
    """An image as 8-bit RGB; `path` names it in errors. 16-bit, 32-bit and float greyscale are scaled
    to 8 bits by fixed rules (_eight_bit): Pillow's own conversion clips them, so every pixel above 255
    would read as white and every float in 0..1 as black."""
    if image.mode in (*SIXTEEN_BIT, "I", "F"):
        return Image.fromarray(_eight_bit(image, path)).convert("RGB")
    return image.convert("RGB")


def _first_where(condition: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(condition)
    return int(rows[0]), int(cols[0])


def decode_mask(image: Image.Image, spec: DatasetSpec, path: Path) -> np.ndarray:
    """Class-index mask (uint8, ignore pixels = spec.ignore_index) from a mask image."""
    if spec.mask_encoding == "rgb":
        return _decode_rgb(image, spec, path)
    if image.mode not in ("L", "P", "I", "1", *SIXTEEN_BIT):
        raise SegdeployError(
            f"{path}: {spec.mask_encoding} mask must be single-channel, got mode {image.mode} "
            "(use mask_encoding: rgb for colour-coded masks)"
        )
    values = np.asarray(image).astype(np.int64)
    if spec.mask_encoding == "binary":
        full = 1 if image.mode == "1" else 65535 if image.mode in SIXTEEN_BIT else 255  # foreground at any depth
        bad = (values != 0) & (values != full)
        if bad.any():
            row, col = _first_where(bad)
            raise SegdeployError(
                f"{path}: binary mask value {values[row, col]} at (row {row}, col {col}); only 0 and {full}"
            )
        return (values == full).astype(np.uint8)
    bad = (values >= spec.num_classes) & (values != spec.ignore_index)
    if bad.any():
        row, col = _first_where(bad)
        raise SegdeployError(
            f"{path}: label {values[row, col]} at (row {row}, col {col}) >= {spec.num_classes} classes "
            f"and is not the ignore index {spec.ignore_index}"
        )
    return values.astype(np.uint8)


def _decode_rgb(image: Image.Image, spec: DatasetSpec, path: Path) -> np.ndarray:
    rgb = np.asarray(as_rgb(image, path)).astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: index for index, (r, g, b) in enumerate(spec.colors)}
    if spec.ignore_color is not None:
        r, g, b = spec.ignore_color
        table[(r << 16) | (g << 8) | b] = spec.ignore_index
    unique, inverse = np.unique(codes, return_inverse=True)
    lookup = np.empty(len(unique), dtype=np.int64)
    for position, code in enumerate(unique.tolist()):
        if code not in table:
            row, col = _first_where(codes == code)
            colour = (code >> 16, (code >> 8) & 255, code & 255)
            raise SegdeployError(
                f"{path}: colour {colour} at (row {row}, col {col}) is not in the class list "
                f"({', '.join(f'{c.name}={c.color}' for c in spec.classes)})"
            )
        lookup[position] = table[code]
    return lookup[inverse.reshape(codes.shape)].astype(np.uint8)


def encode_palette_png(mask: np.ndarray, colors: list[tuple[int, int, int]]) -> Image.Image:
    """A palette PNG whose pixel values are class indices and whose palette shows the class colours."""
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = [channel for color in colors for channel in color]
    image.putpalette(palette + [0] * (768 - len(palette)))
    return image
