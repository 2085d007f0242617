"""Class maps made visible: colour masks, colour overlays on the frame, and a legend of the classes."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..meta import Color, colorize


def overlay(frame: np.ndarray, labels: np.ndarray, colors: list[Color], alpha: float = 0.5) -> np.ndarray:
    """The frame with the class colours blended in at opacity `alpha`."""
    blended = (1 - alpha) * frame.astype(np.float32) + alpha * colorize(labels, colors).astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def with_legend(picture: np.ndarray, names: list[str], colors: list[Color]) -> Image.Image:
    """The picture above a strip with one colour swatch and name per class, wrapped to its width;
    the text scales with the width."""
    height, width = picture.shape[:2]
    swatch = max(10, width // 64)
    font = ImageFont.load_default(size=swatch)
    gap, line = swatch // 2 + 2, swatch + 8
    entries, x, y = [], gap, gap // 2
    for name, color in zip(names, colors):
        text_width = int(font.getlength(name))
        if x > gap and x + swatch + 4 + text_width > width - gap:
            x, y = gap, y + line
        entries.append((x, y, name, color))
        x += swatch + 4 + text_width + 2 * gap
    canvas = Image.new("RGB", (width, height + y + line), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for x, y, name, color in entries:
        top = height + y + (line - swatch) // 2
        draw.rectangle([x, top, x + swatch, top + swatch], fill=color, outline=(90, 90, 90))
        draw.text((x + swatch + 4, top + swatch // 2), name, fill=(0, 0, 0), font=font, anchor="lm")
    return canvas
