"""Tiled inference over a large orthomosaic: writes a synthetic RGB GeoTIFF (CWFID images repeated, tiled
512 x 512, DEFLATE, UTM zone 32N at 5 mm a pixel), runs `segdeploy predict` on it under /usr/bin/time -v
and prints throughput (megapixels a second) and peak RSS as JSON.

    python benchmarks/tiling_geotiff.py EXPORT/model.onnx --width 20000 --height 10000 --work /tmp/tiling-bench

The mosaic is written by windows (row strips), so making it needs little memory either. Run it once,
on an otherwise quiet machine where you can; the figures go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.windows import Window

CWFID = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cwfid" / "images"


def write_mosaic(path: Path, height: int, width: int) -> None:
    """A height x width RGB GeoTIFF of CWFID images side by side, row strip by row strip."""
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(CWFID.glob("*_image.png"))]
    strip_h = images[0].shape[0]
    profile = {"driver": "GTiff", "height": height, "width": width, "count": 3, "dtype": "uint8"}
    profile.update(tiled=True, blockxsize=512, blockysize=512, compress="deflate", bigtiff="IF_SAFER")
    profile.update(crs="EPSG:32632", transform=Affine(0.005, 0, 500_000.0, 0, -0.005, 5_700_000.0))
    with rasterio.open(path, "w", photometric="RGB", **profile) as dataset:
        for index, row in enumerate(range(0, height, strip_h)):
            rolled = images[index % len(images) :] + images[: index % len(images)]
            strip = np.concatenate(rolled * -(-width // sum(i.shape[1] for i in rolled)), axis=1)[:, :width]
            rows = min(strip_h, height - row)
            dataset.write(strip[:rows].transpose(2, 0, 1), window=Window(0, row, width, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--height", type=int, default=10000)
    parser.add_argument("--width", type=int, default=20000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tiling-bench"))
    parser.add_argument("--tile", type=int, default=None)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ortho = args.work / f"ortho_{args.width}x{args.height}.tif"
    if not ortho.exists():
        start = time.perf_counter()
        write_mosaic(ortho, args.height, args.width)
        print(f"wrote {ortho} ({ortho.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
    command = [
        sys.executable,
        "-m",
        "segdeploy",
        "predict",
        str(args.model),
        str(ortho),
        "--out",
        str(args.work / "out"),
    ]
    command += ["--force"] + (["--tile", str(args.tile)] if args.tile else [])
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode:
        sys.exit(run.stdout + run.stderr)
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    megapixels = args.height * args.width / 1e6
    result = {
        "command": " ".join(command),
        "megapixels": megapixels,
        "wall_s": round(wall, 1),
        "throughput_mp_s": round(megapixels / wall, 3),
        "peak_rss_mb": round(peak_kb / 1024),
        "output_mb": round((args.work / "out" / "masks" / f"{ortho.stem}.tif").stat().st_size / 1e6, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
