"""One output form for every model: (B, C, H, W) logits at the input's resolution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class LogitsAdapter(nn.Module):
    """Wraps a model whose output is a tensor, a torchvision {"out": ...} dict or a tuple."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, Mapping):
            out = out["out"]
        elif isinstance(out, Sequence) and not isinstance(out, torch.Tensor):
            out = out[0]
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out
