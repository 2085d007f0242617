"""Frames as robot code hands them: uint8 H x W x 3 in a stated channel order (Pillow and most cameras
give RGB, OpenCV gives BGR), made RGB for the model."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import SegdeployError
from ..meta import CHANNELS

ChannelOrder = Literal["rgb", "bgr"]
CHANNEL_ORDERS: tuple[ChannelOrder, ...] = ("rgb", "bgr")


def channel_order(channels: str, where: str = "channels") -> ChannelOrder:
    """`channels` checked: 'rgb' or 'bgr' (`where`: how the caller names the option)."""
    for order in CHANNEL_ORDERS:
        if channels == order:
            return order
    raise SegdeployError(f"{where} {channels!r}: expected 'rgb' or 'bgr'")


def _hint(frames: np.ndarray) -> str:
    channels = frames.shape[-1] if frames.ndim in (3, 4) else None
    if frames.ndim == 2 or channels == 1:
        return "; a greyscale frame: repeat it to 3 channels"
    if channels == 4:
        return "; 4 channels (RGBA, BGRA): drop the alpha channel, frame[..., :3]"
    return ""


def as_rgb_batch(frames: np.ndarray, channels: ChannelOrder) -> np.ndarray:
    """HxWx3 or NxHxWx3 uint8 frames in the order `channels` as an RGB batch (N, H, W, 3); refused in one
    line (naming the expected shape, type and order) when they do not fit."""
    batch = frames[None] if frames.ndim == 3 else frames
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != CHANNELS or 0 in batch.shape:
        raise SegdeployError(
            f"expected non-empty uint8 frames HxWx3 or NxHxWx3 in {channels.upper()} order (channels={channels!r}), "
            f"got {frames.dtype} {frames.shape}{_hint(frames)}"
        )
    return np.ascontiguousarray(batch[..., ::-1]) if channels == "bgr" else batch
