"""Loading a split: paired images and masks, checked, resized to the working resolution, cached."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image

from ..errors import SegdeployError
from .masks import as_rgb, decode_mask, open_image
from .spec import DatasetSpec

Sample = tuple[np.ndarray, np.ndarray]


class SegmentationSplit:
    """One split of a data set: (image uint8 HxWx3, mask uint8 HxW) pairs, loaded once and cached."""

    def __init__(self, spec: DatasetSpec, split: str) -> None:
        self.spec = spec
        self.split = split
        self.ids = spec.split_ids(split)
        if not self.ids:
            raise SegdeployError(f"{spec.source}: split '{split}' is empty")
        count = f"of {len(self.ids)} ids of split '{split}'"
        missing = [i for i in self.ids if not spec.image_path(i).is_file()]
        if missing:
            raise SegdeployError(
                f"{spec.image_path(missing[0])}: image not found; {len(missing)} {count} have none: {_listed(missing)}"
            )
        unpaired = [i for i in self.ids if not spec.mask_path(i).is_file()]
        if unpaired:
            raise SegdeployError(
                f"{spec.image_path(unpaired[0])}: unpaired image, no mask at {spec.mask_path(unpaired[0])}; "
                f"{len(unpaired)} {count} have none: {_listed(unpaired)}"
            )
        self._cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        if index not in self._cache:
            self._cache[index] = self._load(self.ids[index])
        return self._cache[index]

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def load_all(self) -> list[Sample]:
        return list(self)

    def _load(self, sample_id: str) -> Sample:
        image_path, mask_path = self.spec.image_path(sample_id), self.spec.mask_path(sample_id)
        image = open_image(image_path)
        mask_image = open_image(mask_path)
        if image.size != mask_image.size:
            raise SegdeployError(
                f"{mask_path}: mask is {mask_image.size[0]}x{mask_image.size[1]} but image {image_path.name} "
                f"is {image.size[0]}x{image.size[1]}"
            )
        mask = decode_mask(mask_image, self.spec, mask_path)
        rgb = as_rgb(image, image_path)
        if self.spec.resize is not None:
            height, width = self.spec.resize
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
            mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))
        return np.asarray(rgb, dtype=np.uint8).copy(), np.asarray(mask, dtype=np.uint8).copy()


def _listed(ids: list[str], shown: int = 8) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
