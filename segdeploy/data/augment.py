"""Joint image/mask augmentation for training (torchvision.transforms.v2) and the training set."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..recipes import TrainSettings
from .dataset import SegmentationSplit


def training_transform(settings: TrainSettings, base_size: tuple[int, int], ignore_index: int) -> v2.Compose:
    """Scale jitter around the working resolution, crop (padding with ignore), flips, colour jitter."""
    steps: list[v2.Transform] = [
        v2.ScaleJitter(target_size=base_size, scale_range=settings.scale),
        v2.RandomCrop(settings.crop, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}),
    ]
    if settings.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if settings.vflip:
        steps.append(v2.RandomVerticalFlip())
    if settings.color_jitter > 0:
        amount = settings.color_jitter
        steps.append(v2.ColorJitter(brightness=amount, contrast=amount, saturation=amount, hue=min(amount / 4, 0.5)))
    return v2.Compose(steps)


class TrainingSet(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A split seen `repeats` times per epoch, each sample freshly augmented: (uint8 CxHxW, int64 HxW)."""

    def __init__(self, split: SegmentationSplit, settings: TrainSettings) -> None:
        self.split = split
        self.repeats = settings.repeats
        height, width = split[0][0].shape[:2]
        self.transform = training_transform(settings, (height, width), split.spec.ignore_index)

    def __len__(self) -> int:
        return len(self.split) * self.repeats

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.split[index % len(self.split)]
        image_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))
        image_t, mask_t = self.transform(image_t, mask_t)
        return image_t.as_subclass(torch.Tensor), mask_t.as_subclass(torch.Tensor).long()
