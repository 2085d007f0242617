"""FCN-8s (Long, Shelhamer, Darrell 2015) over any segmentation-models-pytorch encoder.

Class scores are predicted at strides 32, 16 and 8 and fused coarse-to-fine by upsample-and-add;
the fused stride-8 scores are upsampled to the input. As in the paper, the skip scorers start at
zero so training begins from the stride-32 prediction. Bilinear resizing to the skip's exact size
replaces the paper's deconvolution-and-crop, so any input size divisible by 32 works and exports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn


class FCN8s(nn.Module):
    def __init__(
        self, encoder_name: str, num_classes: int, encoder_weights: str | None = None, head_channels: int = 512
    ) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder_name, in_channels=3, depth=5, weights=encoder_weights)
        channels = self.encoder.out_channels
        # The paper's fc6/fc7 turned convolutional, slimmed to a 3x3 and a 1x1 layer.
        self.head = nn.Sequential(
            nn.Conv2d(channels[-1], head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
            nn.Dropout2d(0.1),
            nn.Conv2d(head_channels, head_channels, 1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
        )
        self.score32 = nn.Conv2d(head_channels, num_classes, 1)
        self.score16 = nn.Conv2d(channels[-2], num_classes, 1)
        self.score8 = nn.Conv2d(channels[-3], num_classes, 1)
        for layer in (self.score16, self.score8):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        scores = self.score32(self.head(features[-1]))
        for skip, scorer in ((features[-2], self.score16), (features[-3], self.score8)):
            scores = F.interpolate(scores, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            scores = scores + scorer(skip)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
