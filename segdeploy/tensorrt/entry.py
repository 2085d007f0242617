"""The one door to a TensorRT build for callers that may run where TensorRT is missing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from ..errors import SegdeployError
from . import require_tensorrt
from .options import BuildOptions
from .result import BuildResult, Progress


def build_if_installed(
    onnx: Path,
    engine: Path | None,
    options: BuildOptions,
    log: Callable[[str], None],
    progress: Callable[[Path], AbstractContextManager[Progress]],
) -> BuildResult:
    """Build `onnx` into `engine` [MODEL.plan] with `progress(onnx)` showing the builder's phases; one line
    naming the file when it is missing or this machine lacks TensorRT or a CUDA binding."""
    if not onnx.is_file():
        raise SegdeployError(f"{onnx}: file not found")
    require_tensorrt(str(onnx))
    from .build import build_engine

    with progress(onnx) as update:
        return build_engine(onnx, engine, options, log=log, progress=update)
