"""The backend interface that parity and bench rely on, and the shared host-side preprocessing."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..meta import ModelMeta


class Backend(Protocol):
    """Runs one artifact. `run(frames)` takes uint8 frames (N, H, W, 3) and returns float32 logits
    (N, C, H, W), or int32 class maps (N, H, W) when the artifact ends in an argmax (meta.io.argmax).
    `run` is `infer(prepare(frames))`: `prepare` is the host-side preprocessing, `infer` the rest,
    which bench times separately."""

    name: str  # the engine: "pytorch", "onnxruntime", "tensorrt"
    label: str  # which artifact (and variant), for tables
    precision: str  # "fp32", "fp16", "int8"
    meta: ModelMeta

    def prepare(self, frames: np.ndarray) -> Any: ...

    def infer(self, feed: Any) -> np.ndarray: ...

    def run(self, frames: np.ndarray) -> np.ndarray: ...

    def settings(self) -> dict[str, Any]: ...


def check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {frames.shape}")
