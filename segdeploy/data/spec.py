"""The dataset YAML format: where images and masks are, how masks encode classes, and the splits."""

from __future__ import annotations

import os
import random
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from ..config import build, read_yaml
from ..errors import SegdeployError, SegdeployWarning

Color = tuple[int, int, int]


@dataclass(frozen=True)
class ClassInfo:
    name: str
    color: Color


@dataclass(frozen=True)
class SplitFile:
    """A split read from a text file of ids, one per line (Pascal VOC's ImageSets layout)."""

    file: str


@dataclass(frozen=True)
class RandomSplit:
    """Split the discovered ids: `val` is the held-out fraction, the rest is train."""

    val: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    root: str
    images: str
    masks: str
    classes: list[ClassInfo]
    mask_encoding: Literal["index", "rgb", "binary"] = "index"
    ignore_index: int = 255
    ignore_color: Color | None = None
    resize: tuple[int, int] | None = None
    splits: dict[str, list[str] | SplitFile] = field(default_factory=dict)
    random_split: RandomSplit | None = None
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[Color]:
        return [c.color for c in self.classes]

    @property
    def root_path(self) -> Path:
        root = Path(os.path.expanduser(os.path.expandvars(self.root)))
        return root if root.is_absolute() else (Path(self.source).parent / root).resolve()

    def image_path(self, sample_id: str) -> Path:
        return self.root_path / self.images.format(id=sample_id)

    def mask_path(self, sample_id: str) -> Path:
        return self.root_path / self.masks.format(id=sample_id)

    @cached_property
    def discovered_ids(self) -> list[str]:
        """Ids of every image matching the `images` pattern, sorted."""
        pattern = self.root_path / self.images
        directory = pattern.parent
        if not directory.is_dir():
            raise SegdeployError(f"{self.source}: image folder {directory} not found")
        prefix, _, suffix = pattern.name.partition("{id}")
        regex = re.compile(re.escape(prefix) + "(.+)" + re.escape(suffix) + "$")
        ids = sorted(m.group(1) for p in directory.iterdir() if (m := regex.match(p.name)))
        if not ids:
            raise SegdeployError(f"{self.source}: no images match {pattern}")
        return ids

    def split_names(self) -> list[str]:
        names = list(self.splits)
        if self.random_split is not None:
            names += [n for n in ("train", "val") if n not in names]
        return names

    def split_ids(self, split: str) -> list[str]:
        ids = self._split_ids(split)
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise SegdeployError(f"{self.source}: split '{split}' lists ids more than once: {', '.join(repeated)}")
        return ids

    def _split_ids(self, split: str) -> list[str]:
        entry = self.splits.get(split)
        if isinstance(entry, SplitFile):
            path = self.root_path / entry.file
            try:
                return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError):
                raise SegdeployError(f"{path}: split file of '{split}' not readable as UTF-8 text") from None
        if entry is not None:
            return list(entry)
        if self.random_split is not None and split in ("train", "val"):
            ids = list(self.discovered_ids)
            random.Random(self.random_split.seed).shuffle(ids)
            n_val = max(1, round(len(ids) * self.random_split.val))
            return sorted(ids[:n_val] if split == "val" else ids[n_val:])
        raise SegdeployError(f"{self.source}: no split '{split}' (known: {', '.join(self.split_names())})")


def load_dataset_spec(path: Path) -> DatasetSpec:
    raw = read_yaml(path)
    raw.setdefault("name", path.stem)
    raw["source"] = str(path.resolve())
    splits = raw.get("splits")
    if isinstance(splits, dict):
        raw["splits"] = {k: [str(i) for i in v] if isinstance(v, list) else v for k, v in splits.items()}
    spec = build(DatasetSpec, raw, str(path))
    if spec.num_classes < 2:
        raise SegdeployError(f"{path}: at least two classes are needed")
    if spec.mask_encoding == "binary" and spec.num_classes != 2:
        raise SegdeployError(f"{path}: mask_encoding binary needs exactly two classes, got {spec.num_classes}")
    if spec.mask_encoding == "rgb" and len(set(spec.colors)) != spec.num_classes:
        raise SegdeployError(f"{path}: class colours must be distinct for mask_encoding rgb")
    for pattern_key in ("images", "masks"):
        if "{id}" not in getattr(spec, pattern_key):
            raise SegdeployError(f"{path}: '{pattern_key}' must contain the placeholder {{id}}")
    if not spec.splits and spec.random_split is None:
        raise SegdeployError(f"{path}: give 'splits' (id lists or files) or 'random_split'")
    _check_values(spec, path)
    _warn_overlap(spec, path)
    return spec


def _warn_overlap(spec: DatasetSpec, path: Path) -> None:
    """Warn, naming them, about ids listed in both train and val: validation scores on them measure
    memory, not generalisation. Not refused: tiny experiments and tests train on what they validate on.
    A split that cannot be read is left to the command that reads it."""
    if not {"train", "val"} <= spec.splits.keys():
        return
    try:
        shared = sorted(set(spec.split_ids("train")) & set(spec.split_ids("val")))
    except SegdeployError:
        return
    if shared:
        named = ", ".join(shared[:10]) + (f" and {len(shared) - 10} more" if len(shared) > 10 else "")
        warnings.warn(
            f"{path}: train and val share {len(shared)} id{'s' if len(shared) > 1 else ''} ({named}): "
            "validation scores on them measure memory, not generalisation",
            SegdeployWarning,
            stacklevel=3,  # the caller of load_dataset_spec
        )


def _check_values(spec: DatasetSpec, path: Path) -> None:
    """Numbers that would otherwise be cast or clipped into something else without a word."""
    colours = [(f"class '{c.name}' color", c.color) for c in spec.classes]
    colours += [("ignore_color", spec.ignore_color)] if spec.ignore_color is not None else []
    for what, colour in colours:
        if not all(0 <= v <= 255 for v in colour):
            raise SegdeployError(f"{path}: {what} {list(colour)}: components must be 0..255")
    if not 0 <= spec.ignore_index <= 255:
        raise SegdeployError(f"{path}: ignore_index {spec.ignore_index}: must be 0..255 (masks are 8-bit)")
    if spec.ignore_index < spec.num_classes:
        raise SegdeployError(
            f"{path}: ignore_index {spec.ignore_index} is class '{spec.class_names[spec.ignore_index]}'; "
            f"use a value from {spec.num_classes} to 255"
        )
    if spec.resize is not None and min(spec.resize) < 1:
        raise SegdeployError(f"{path}: resize {list(spec.resize)}: height and width must be at least 1")
    if spec.random_split is not None and not 0.0 <= spec.random_split.val <= 1.0:
        raise SegdeployError(f"{path}: random_split val {spec.random_split.val}: a fraction from 0 to 1")
