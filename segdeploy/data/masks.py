"""Decoding mask files into class-index arrays (index/palette PNG, RGB colour codes, binary 0/255)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

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
    """Open an image file; without `load`, only its header is read (a cheap check that it is an image).
    Loading one of more than PIXEL_LIMIT pixels is refused in one line: tile it from a GeoTIFF instead."""
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
        raise SegdeployError(f"{path}: unreadable image ({exc})") from None
    return image


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def as_rgb(image: Image.Image) -> Image.Image:
    """An image as 8-bit RGB. 16-bit greyscale (and 32-bit holding 16-bit values) is scaled to 8 bits:
    Pillow's own conversion clips it, so every pixel above 255 would read as white."""
    if image.mode in (*SIXTEEN_BIT, "I", "F"):
        values = np.asarray(image).astype(np.float64)
        sixteen = image.mode in SIXTEEN_BIT or (values.size and values.max() > 255)
        eight = np.clip(np.round(values / 257.0 if sixteen else values), 0, 255).astype(np.uint8)
        return Image.fromarray(eight).convert("RGB")
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
    rgb = np.asarray(as_rgb(image)).astype(np.int32)
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
