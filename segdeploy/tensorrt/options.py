"""What a TensorRT build is asked for, checked before TensorRT is imported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.calibration import check_calibration_options
from ..errors import SegdeployError
from ..precision_table import FP16, INT8


@dataclass(frozen=True)
class BuildOptions:
    precision: str | None = None  # None: as the graph is typed; "fp16"/"int8": builder flags on an FP32 graph
    calibration: Path | None = None  # a calibration set folder, for "int8" with builder flags
    calib_batch: int = 8
    workspace_mb: int = 2048
    timing_cache: Path | None = None  # default: timing.cache beside the engine
    dla_core: int | None = None
    device: int = 0
    force: bool = False

    def __post_init__(self) -> None:
        if self.calib_batch < 1 or self.workspace_mb < 1:
            raise SegdeployError("--calib-batch and --workspace must be positive")

    @classmethod
    def from_flags(
        cls,
        fp16: bool,
        int8: bool,
        calibration: Path | None,
        calib_batch: int = 8,
        workspace_mb: int = 2048,
        timing_cache: Path | None = None,
        dla_core: int | None = None,
        device: int = 0,
        force: bool = False,
    ) -> BuildOptions:
        """From the command line's terms: --fp16 or --int8 (builder flags on the FP32 graph), --int8 with --calib."""
        if fp16 and int8:
            raise SegdeployError("--fp16 and --int8: choose one (INT8 builds already allow FP16 layers)")
        check_calibration_options(int8, calibration)
        precision = FP16.name if fp16 else INT8.name if int8 else None
        return cls(precision, calibration, calib_batch, workspace_mb, timing_cache, dla_core, device, force)
