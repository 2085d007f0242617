"""The export's stored reference (artifacts/reference.py): which frames, and PyTorch's FP32 outputs on them.

Frames come from the data set export already reads (the INT8 guard's split of the calibration set's data
set), else they are deterministic random frames at the recipe's input size; the manifest says which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..artifacts.reference import describe_reference, write_reference
from ..data.dataset import SegmentationSplit
from ..evaluate import batches
from ..meta import CHANNELS, IOSpec, ModelMeta
from ..models.adapter import LogitsAdapter
from ..models.deploy_module import DeployModule

# At most this many frames and pixels: 2 frames of 480x640, a few MB at CWFID's size (README: Parity).
FRAMES = 2
PIXELS = 2 * 480 * 640
SEED = 0


def reference_frames(meta: ModelMeta, split: SegmentationSplit | None) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(frames, labels or None, origin): the first frames of `split` (padded to the model's stride as parity
    pads them), or random ones at the recipe's input size when there is no data set."""
    if split is None:
        height, width = meta.recipe.input_size
        count = max(1, min(FRAMES, PIXELS // (height * width)))
        frames = np.random.default_rng(SEED).integers(0, 256, (count, height, width, CHANNELS), dtype=np.uint8)
        return frames, None, {"source": "random", "seed": SEED, "count": count, "size": [height, width]}
    frames, masks = next(batches(split, FRAMES, indices=range(min(FRAMES, len(split)))))
    count = max(1, min(len(frames), PIXELS // (frames.shape[1] * frames.shape[2])))
    origin = {
        "source": "dataset",
        "dataset": split.spec.name,
        "data": split.spec.source,
        "split": split.split,
        "ids": split.ids[:count],
        "ignore_index": split.spec.ignore_index,
    }
    return frames[:count], masks[:count], origin


def write_export_reference(
    folder: Path, model: LogitsAdapter, meta: ModelMeta, split: SegmentationSplit | None, name: str
) -> dict[str, Any]:
    """Write `folder`/`name` from PyTorch's FP32 logits on the reference frames; returns its manifest entry."""
    frames, labels, origin = reference_frames(meta, split)
    module = DeployModule(model.cpu().eval(), meta.recipe.mean, meta.recipe.std, IOSpec(True, False)).eval()
    with torch.inference_mode():
        logits = module(torch.from_numpy(frames)).numpy()
    write_reference(folder / name, frames, logits, labels, keep_logits=not meta.io.argmax)
    return describe_reference(folder / name, origin)
