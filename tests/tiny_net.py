"""A tiny conv-BatchNorm segmentation net for the distributed tests (`--model tests.tiny_net:build`)."""

from __future__ import annotations

from torch import nn


def build(num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16), *block(16, 16), nn.Conv2d(16, num_classes, 1))
