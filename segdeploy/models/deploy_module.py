"""The graph that gets deployed: optional uint8 NHWC input with normalisation, model, optional argmax."""

from __future__ import annotations

import torch
from torch import nn

from ..meta import CHANNELS, IOSpec


class DeployModule(nn.Module):
    mean: torch.Tensor
    inv_std: torch.Tensor

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], io: IOSpec) -> None:
        super().__init__()
        self.model = model
        self.io = io
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, CHANNELS, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(std, dtype=torch.float32).view(1, CHANNELS, 1, 1) * 255.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.io.fold_preprocess:
            x = (x.permute(0, 3, 1, 2).float() - self.mean) * self.inv_std
        logits = self.model(x)
        if self.io.argmax:
            return logits.argmax(dim=1).to(torch.int32)
        return logits
