"""Stitched against whole-image class maps of a real model: CWFID images at their own resolution
(966 x 1296, inside the export's range, so they run both ways), whole (padded to a multiple of 32) and
tiled with `Segmenter.segment_large`; prints the pixel agreement as JSON, over all pixels and over
those farther than `--overlap` from the image border.

    python benchmarks/tiling_agreement.py /work/models/exports/unet/model.onnx --tile 512 --overlap 128
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from segdeploy.runtime import Segmenter
from segdeploy.runtime.segmenter import segment_frames

CWFID = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cwfid" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=128)
    parser.add_argument("--num", type=int, default=4)
    args = parser.parse_args()
    same = inner_same = pixels = inner_pixels = 0
    with Segmenter(args.model) as segment:
        for path in sorted(CWFID.glob("*_image.png"))[: args.num]:
            frame = np.asarray(Image.open(path).convert("RGB"))
            whole = segment_frames(segment.backend, frame[None])[0][0]
            stitched = segment.segment_large(frame, tile=args.tile, overlap=args.overlap)
            equal = whole == stitched
            inner = equal[args.overlap : -args.overlap, args.overlap : -args.overlap]
            same, pixels = same + int(equal.sum()), pixels + equal.size
            inner_same, inner_pixels = inner_same + int(inner.sum()), inner_pixels + inner.size
    print(
        json.dumps(
            {
                "model": str(args.model),
                "images": args.num,
                "tile": args.tile,
                "overlap": args.overlap,
                "agreement": round(same / pixels, 6),
                "agreement_inside_overlap_margin": round(inner_same / inner_pixels, 6),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
