"""Losses from torch and segmentation-models-pytorch, with class weights and the ignore index."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn


class Sum(nn.Module):
    def __init__(self, *terms: nn.Module) -> None:
        super().__init__()
        self.terms = nn.ModuleList(terms)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum((term(logits, target) for term in self.terms), torch.zeros((), device=logits.device))


def build_loss(name: str, class_weights: list[float] | None, ignore_index: int) -> nn.Module:
    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
    cross_entropy = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
    dice = smp.losses.DiceLoss(mode="multiclass", ignore_index=ignore_index)
    focal = smp.losses.FocalLoss(mode="multiclass", ignore_index=ignore_index)
    return {"ce": cross_entropy, "dice": dice, "focal": focal, "ce+dice": Sum(cross_entropy, dice)}[name]
