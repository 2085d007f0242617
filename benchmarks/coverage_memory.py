"""Peak memory and time of `segdeploy coverage` on a large class map: builds a W x H uint8 GeoTIFF in
UTM 32N (2 cm pixels, tiled 512, deflate; crop rows, square weed patches of 2-40 px, a 300 px nodata
margin) band by band, a grid of fields over it, then runs write_coverage with --fields and --polygons
in a fresh process and reports its peak RSS (ru_maxrss) before and after the call, and the seconds.

    PYTHONPATH=. python benchmarks/coverage_memory.py --width 20000 --height 10000 --work /tmp/covbench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PIXEL, WEST, NORTH = 0.02, 500_000.0, 5_000_000.0
CHILD = """
import json, resource, sys, time
from pathlib import Path
from segdeploy.geo.coverage import write_coverage
work = Path(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
report = write_coverage(work / "map.tif", work / "out", ["soil", "crop", "weed"], work / "fields.geojson",
                        polygons=True, force=True)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024,
                  "patches": report.patches["count"], "valid_pixels": sum(report.whole.counts)}))
"""


def build(work: Path, width: int, height: int, grid: tuple[int, int]) -> None:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    work.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8", "nodata": 255,
        "crs": "EPSG:32632", "transform": from_origin(WEST, NORTH, PIXEL, PIXEL), "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(work / "map.tif", "w", **profile) as dataset:
        for top in range(0, height, 512):
            rows = min(512, height - top)
            labels = np.zeros((rows, width), np.uint8)
            labels[:, (np.arange(width) % 60) < 6] = 1
            for _ in range(width * rows // 40_000):  # about one patch per 200 x 200 px
                size = int(rng.integers(2, 41))
                r, c = int(rng.integers(0, max(1, rows - size))), int(rng.integers(0, width - size))
                labels[r : r + size, c : c + size] = 2
            labels[:, :300] = 255
            dataset.write(labels, 1, window=Window(0, top, width, rows))
    columns, lines = grid
    features = []
    for i in range(columns):
        for j in range(lines):
            x0, x1 = WEST + width * PIXEL * i / columns, WEST + width * PIXEL * (i + 1) / columns
            y0, y1 = NORTH - height * PIXEL * j / lines, NORTH - height * PIXEL * (j + 1) / lines
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            geometry = {"type": "Polygon", "coordinates": [ring]}
            features.append({"type": "Feature", "properties": {"name": f"F{i}{j}"}, "geometry": geometry})
    document = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32632"}},
                "features": features}  # fmt: skip
    (work / "fields.geojson").write_text(json.dumps(document))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=20000)
    parser.add_argument("--height", type=int, default=10000)
    parser.add_argument("--grid", default="4x3", help="fields: columns x rows")
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    columns, lines = (int(v) for v in args.grid.split("x"))
    start = time.perf_counter()
    build(args.work, args.width, args.height, (columns, lines))
    built = time.perf_counter() - start
    run = subprocess.run([sys.executable, "-c", CHILD, str(args.work)], capture_output=True, text=True, check=True)
    result = {"width": args.width, "height": args.height, "fields": columns * lines, "build_seconds": built}
    result.update(json.loads(run.stdout))
    result["megapixels_per_second"] = args.width * args.height / 1e6 / result["seconds"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
