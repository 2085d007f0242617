"""Engines during export: a TensorRT engine beside each ONNX graph, when this machine has TensorRT."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from ..tensorrt import tensorrt_available

if TYPE_CHECKING:
    from ..tensorrt.build import BuildResult, Progress


def build_engines(
    graphs: list[Path],
    force: bool,
    log: Callable[[str], None],
    progress: Callable[[Path], AbstractContextManager[Progress]],
) -> list[BuildResult] | None:
    """Build each graph as it is typed (FP32, FP16, Q/DQ INT8), one after the other, with `progress(graph)`
    showing the builder's phases; None when TensorRT or a CUDA binding is missing (the ONNX models stand alone)."""
    if not tensorrt_available():
        return None
    from ..tensorrt.build import build_engine
    from ..tensorrt.options import BuildOptions

    results = []
    for graph in graphs:
        with progress(graph) as update:
            results.append(build_engine(graph, options=BuildOptions(force=force), log=log, progress=update))
    return results
