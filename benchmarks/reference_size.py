"""Size of the stored reference (reference.npz) that `segdeploy export` writes, per array, for a model at a
data set's size: frames from its val split (as with --int8 --calib) and random frames (without).

Usage: python benchmarks/reference_size.py RECIPE DATA_YAML [CHECKPOINT]   (no checkpoint: untrained)"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from segdeploy.artifacts.reference import FILE
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.spec import load_dataset_spec
from segdeploy.export.reference import write_export_reference
from segdeploy.meta import ModelMeta, default_colors
from segdeploy.models.checkpoint import load_model
from segdeploy.models.registry import build_model
from segdeploy.recipes import choose_recipe


def main(recipe_name: str, data: Path, checkpoint: Path | None) -> None:
    spec = load_dataset_spec(data)
    recipe = choose_recipe(recipe_name, None, None)
    if checkpoint is not None:
        network, meta, _ = load_model(checkpoint, recipe)
    else:
        network = build_model(recipe.architecture, recipe.encoder, recipe.num_classes)
        meta = ModelMeta(recipe, spec.class_names, default_colors(recipe.num_classes))
    for label, split in ((f"{spec.name} val", SegmentationSplit(spec, "val")), ("random", None)):
        with tempfile.TemporaryDirectory() as folder:
            entry = write_export_reference(Path(folder), network, meta, split, FILE)
            with np.load(Path(folder) / FILE, allow_pickle=False) as data:
                shape = data["frames"].shape
            with zipfile.ZipFile(Path(folder) / FILE) as archive:
                parts = ", ".join(f"{i.filename} {i.compress_size / 1e6:.2f}" for i in archive.infolist())
        print(
            f"{recipe.name} {label}: {entry['bytes'] / 1e6:.2f} MB for {shape[0]} frames of {shape[1]}x{shape[2]} "
            f"(MB per array: {parts})"
        )


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
