"""A procedural stand-in for a crop/weed field data set, written as real files with a dataset YAML.

The real data sets (CWFID, ISBI 2012) may not be redistributed, so `segdeploy demo` draws its own:
brown soil with texture, round green crop plants and thin yellow-green weeds, with CWFID's colour code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

SOIL, CROP, WEED = (0, 0, 0), (0, 255, 0), (255, 0, 0)


def _scene(rng: np.random.Generator, height: int, width: int) -> tuple[Image.Image, Image.Image]:
    coarse = rng.normal(0, 18, size=(height // 16 + 1, width // 16 + 1, 1))
    texture = np.asarray(Image.fromarray(coarse[..., 0].astype(np.float32)).resize((width, height)))[..., None]
    soil = np.array([118, 86, 58]) + texture + rng.normal(0, 10, size=(height, width, 3))
    image = Image.fromarray(np.clip(soil, 0, 255).astype(np.uint8))
    mask = Image.new("RGB", (width, height), SOIL)
    draw_image, draw_mask = ImageDraw.Draw(image), ImageDraw.Draw(mask)
    for _ in range(rng.integers(1, 4)):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(7, 14)
        green = tuple(int(v) for v in rng.integers([30, 130, 30], [70, 190, 70]))
        for _ in range(5):
            dx, dy = rng.normal(0, radius / 2, size=2)
            box = [cx + dx - radius / 2, cy + dy - radius / 2, cx + dx + radius / 2, cy + dy + radius / 2]
            draw_image.ellipse(box, fill=green)
            draw_mask.ellipse(box, fill=CROP)
    for _ in range(rng.integers(2, 6)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        yellow = tuple(int(v) for v in rng.integers([150, 170, 40], [200, 215, 90]))
        for _ in range(3):
            angle, length = rng.uniform(0, np.pi), rng.uniform(6, 14)
            end = (x + length * np.cos(angle), y + length * np.sin(angle))
            draw_image.line([(x, y), end], fill=yellow, width=2)
            draw_mask.line([(x, y), end], fill=WEED, width=2)
    return image.filter(ImageFilter.GaussianBlur(0.6)), mask


def write_synthetic_dataset(
    out_dir: Path, n_train: int = 32, n_val: int = 8, size: tuple[int, int] = (128, 160), seed: int = 0
) -> Path:
    """Write images/, masks/ and dataset.yaml under `out_dir`; return the YAML's path."""
    rng = np.random.default_rng(seed)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    ids = [f"{i:03d}" for i in range(n_train + n_val)]
    for sample_id in ids:
        image, mask = _scene(rng, *size)
        image.save(out_dir / "images" / f"{sample_id}.png")
        mask.save(out_dir / "masks" / f"{sample_id}.png")
    spec = {
        "name": "synthetic-field",
        "root": ".",
        "images": "images/{id}.png",
        "masks": "masks/{id}.png",
        "mask_encoding": "rgb",
        "classes": [
            {"name": "soil", "color": list(SOIL)},
            {"name": "crop", "color": list(CROP)},
            {"name": "weed", "color": list(WEED)},
        ],
        "splits": {"train": ids[:n_train], "val": ids[n_train:]},
    }
    path = out_dir / "dataset.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
