"""What a TensorRT build returns, and its progress callback. Pure Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .versions import BuildPlan

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildResult:
    onnx: Path  # the graph it was built from
    engine: Path
    sidecar: Path
    plan: BuildPlan
    seconds: float
    timing_cache: Path
    calibration_cache: Path | None
