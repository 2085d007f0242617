"""Calibration sets: a deterministic choice of images that covers rare classes, with its preprocessing."""

from __future__ import annotations

import functools
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegdeployError
from ..files import read_json, refuse_overwrite, require_folder, staged_folder, write_json
from ..meta import CHANNELS, AcceptedShapes, IOSpec, ModelMeta, normalize
from ..recipes import load_recipe
from .dataset import SegmentationSplit
from .spec import DatasetSpec, load_dataset_spec

FORMAT = "segdeploy.calibration/1"
MIN_IMAGES = 8  # fewer cannot give stable activation ranges


@dataclass(frozen=True)
class CalibrationSet:
    directory: Path
    dataset: Path
    split: str
    ids: list[str]
    seed: int
    size: tuple[int, int]
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def frames(self) -> Iterator[np.ndarray]:
        """The calibration images one at a time as uint8 (1, H, W, 3), read from the data set."""
        split = SegmentationSplit(load_dataset_spec(self.dataset), self.split)
        index = {sample_id: i for i, sample_id in enumerate(split.ids)}
        for sample_id in self.ids:
            if sample_id not in index:
                raise SegdeployError(
                    f"{self.directory}: id '{sample_id}' is not in split '{self.split}' of {self.dataset}"
                )
            image, _ = split[index[sample_id]]
            if image.shape[:2] != self.size:
                raise SegdeployError(
                    f"{self.directory}: image '{sample_id}' is {image.shape[:2]}, the set says {self.size}"
                )
            yield image[None]

    def feed(self, frames: np.ndarray, io: IOSpec) -> np.ndarray:
        """The model's input for calibration frames: themselves when the graph normalises, else normalised
        with the mean and std this set records (check_compatible matched them with the model's)."""
        return frames if io.fold_preprocess else normalize(frames, self.mean, self.std)

    def summary(self) -> str:
        """'64 images of 256x320 (weed 3.1% in 40 images, ...)': the size and class coverage its manifest records."""
        selected = read_json(self.directory / "manifest.json")["class_coverage"]["selected"]
        shares = ", ".join(f"{k} {100 * v['pixel_fraction']:.1f}% in {v['images']} images" for k, v in selected.items())
        return f"{len(self.ids)} images of {self.size[0]}x{self.size[1]} ({shares})"


def check_calibration_options(int8: bool, calibration: Path | None) -> None:
    """--int8 and --calib come together."""
    if int8 and calibration is None:
        raise SegdeployError("--int8 needs --calib calibration/NAME (make one with 'segdeploy calibrate')")
    if calibration is not None and not int8:
        raise SegdeployError("--calib is only used with --int8")


def _class_counts(split: SegmentationSplit) -> np.ndarray:
    num, ignore = split.spec.num_classes, split.spec.ignore_index
    return np.stack([np.bincount(mask[mask != ignore].ravel(), minlength=num)[:num] for _, mask in split])


def select_ids(split: SegmentationSplit, num: int, seed: int) -> list[str]:
    """Half the set goes round-robin to the images richest in each class, rarest class first;
    the rest is a seeded random draw. Deterministic for a given split, size and seed."""
    counts = _class_counts(split)
    order = np.argsort(counts.sum(0), kind="stable")  # rarest class first
    quota = max(1, math.ceil(num / (2 * len(order))))
    chosen: list[int] = []
    for class_index in order:
        ranked = [int(i) for i in np.argsort(-counts[:, class_index], kind="stable") if counts[i, class_index] > 0]
        chosen += [i for i in ranked if i not in chosen][:quota]
    rest = [i for i in range(len(split)) if i not in chosen]
    random.Random(seed).shuffle(rest)
    chosen = (chosen + rest)[:num]
    return [split.ids[i] for i in chosen]


def coverage(split: SegmentationSplit, ids: list[str]) -> dict[str, Any]:
    counts = _class_counts(split)
    picked = counts[[split.ids.index(i) for i in ids]]

    def describe(rows: np.ndarray) -> dict[str, Any]:
        fractions = rows.sum(0) / max(rows.sum(), 1)
        return {
            name: {"pixel_fraction": round(float(f), 5), "images": int((rows[:, c] > 0).sum())}
            for c, (name, f) in enumerate(zip(split.spec.class_names, fractions))
        }

    return {"selected": describe(picked), "split": describe(counts)}


def write_calibration_set(
    out_dir: Path,
    data: Path,
    split_name: str = "train",
    num: int = 64,
    seed: int = 0,
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    force: bool = False,
) -> CalibrationSet:
    require_folder(out_dir)
    written = [out_dir / "manifest.json", out_dir / "ids.txt"]
    refuse_overwrite(written, force)  # before the work, and again under the writer's lock
    spec: DatasetSpec = load_dataset_spec(data)
    split = SegmentationSplit(spec, split_name)
    if num < MIN_IMAGES:
        raise SegdeployError(f"--num {num}: a calibration set needs at least {MIN_IMAGES} images")
    if num > len(split):
        raise SegdeployError(f"{data}: split '{split_name}' has {len(split)} images, fewer than --num {num}")
    ids = select_ids(split, num, seed)
    sizes = {split[split.ids.index(i)][0].shape[:2] for i in ids}
    if len(sizes) != 1:
        raise SegdeployError(f"{data}: images differ in size {sorted(sizes)}; set 'resize' in the dataset YAML")
    height, width = sizes.pop()
    manifest = {
        "format": FORMAT,
        "dataset": os.path.relpath(Path(data).resolve(), out_dir.resolve()),
        "dataset_when_made": str(Path(data).resolve()),  # found again when the set moves without it
        "dataset_name": spec.name,
        "split": split_name,
        "num": len(ids),
        "seed": seed,
        "ids": ids,
        "preprocessing": {
            "size": [height, width],
            "channels": CHANNELS,
            "layout": "RGB uint8 frames",
            "mean": list(mean),
            "std": list(std),
        },
        "class_coverage": coverage(split, ids),
    }
    again = functools.partial(refuse_overwrite, written, force)
    with staged_folder(out_dir, replaced=lambda _: {p.name for p in written}, refuse=again) as staging:
        (staging / "ids.txt").write_text("\n".join(ids) + "\n")
        write_json(staging / "manifest.json", manifest)
    return load_calibration_set(out_dir)


def make_calibration_set(
    data: Path,
    split: str = "train",
    num: int = 64,
    seed: int = 0,
    *,
    name: str | None = None,
    out: Path | None = None,
    recipe: str | None = None,
    force: bool = False,
) -> CalibrationSet:
    """Write a set of `num` images of `split` into `out` [calibration/NAME, NAME the data set's by default],
    recording the normalisation of `recipe` [unet]."""
    chosen = load_recipe(recipe or "unet")
    if name is not None and (Path(name).name != name or name in ("", ".", "..")):
        raise SegdeployError(f"--name '{name}': a set name, not a path (use --out for another folder)")
    folder = out or Path("calibration") / (name or load_dataset_spec(data).name)
    return write_calibration_set(folder, data, split, num, seed, chosen.mean, chosen.std, force=force)


def load_calibration_set(directory: Path) -> CalibrationSet:
    path = directory / "manifest.json"
    if not path.is_file():
        raise SegdeployError(
            f"{directory}: not a calibration set (no manifest.json); make one with 'segdeploy calibrate'"
        )
    raw = read_json(path)
    try:
        pre = raw["preprocessing"]
        ids = [str(i) for i in raw["ids"]]
        dataset = _find_dataset(path, str(raw["dataset"]), raw.get("dataset_when_made"))
        calibration = CalibrationSet(
            directory,
            dataset,
            raw["split"],
            ids,
            int(raw["seed"]),
            (int(pre["size"][0]), int(pre["size"][1])),
            int(pre["channels"]),
            tuple(pre["mean"]),
            tuple(pre["std"]),
        )  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise SegdeployError(f"{path}: malformed calibration manifest ({exc})") from None
    if not ids:
        raise SegdeployError(f"{path}: the calibration set is empty")
    return calibration


def _find_dataset(manifest: Path, recorded: str, when_made: object) -> Path:
    """The data set YAML a calibration set's manifest names: by its path relative to the set's folder
    (the two moved together), else where it was when the set was made (the set moved alone)."""
    relative = manifest.parent / recorded
    if relative.is_file():
        return relative
    tried = [f"{os.path.normpath(relative)} (the recorded '{recorded}' from the set's folder)"]
    if isinstance(when_made, str):
        if Path(when_made).is_file():
            return Path(when_made)
        tried.append(f"{when_made} (where it was when the set was made)")
    raise SegdeployError(
        f"{manifest}: its data set YAML is not found; looked at {' and '.join(tried)}; put the data set "
        "there, or make the set again with 'segdeploy calibrate'"
    )


def check_compatible(calibration: CalibrationSet, meta: ModelMeta, input_channels: int) -> None:
    """Refuse a set that would silently calibrate the wrong thing."""
    where = calibration.directory
    if len(calibration.ids) < MIN_IMAGES:
        raise SegdeployError(f"{where}: {len(calibration.ids)} images, fewer than the {MIN_IMAGES} calibration needs")
    if calibration.channels != input_channels:
        raise SegdeployError(f"{where}: {calibration.channels}-channel images for a {input_channels}-channel model")
    height, width = calibration.size
    problems = AcceptedShapes.of_export(meta.recipe.export).problems(1, height, width)
    if problems:
        raise SegdeployError(
            f"{where}: image size {height}x{width} does not fit the model's input ({'; '.join(problems)})"
        )
    if not (np.allclose(calibration.mean, meta.recipe.mean) and np.allclose(calibration.std, meta.recipe.std)):
        raise SegdeployError(
            f"{where}: normalisation mean {list(calibration.mean)} std {list(calibration.std)} differs "
            f"from the model's mean {list(meta.recipe.mean)} std {list(meta.recipe.std)}"
        )
