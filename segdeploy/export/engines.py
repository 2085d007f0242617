"""Engines during export: a TensorRT engine beside each ONNX graph, when this machine has TensorRT."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from ..tensorrt import tensorrt_available

if TYPE_CHECKING:
    from ..tensorrt.result import BuildResult, Progress


def build_engines(
    graphs: list[Path],
    force: bool,
    log: Callable[[str], None],
    progress: Callable[[Path], AbstractContextManager[Progress]],
) -> list[BuildResult] | None:
    """Build each graph as it is typed (FP32, FP16, one Q/DQ INT8 graph: versions.graphs_to_build), one after
    the other, with `progress(graph)` showing the builder's phases; None when TensorRT or a CUDA binding is
    missing (the ONNX models stand alone)."""
    if not tensorrt_available():
        return None
    import tensorrt as trt

    from ..tensorrt.build import build_engine
    from ..tensorrt.options import BuildOptions
    from ..tensorrt.versions import TrtVersion, graphs_to_build

    results = []
    for graph in graphs_to_build(TrtVersion.parse(trt.__version__), graphs):
        with progress(graph) as update:
            results.append(build_engine(graph, options=BuildOptions(force=force), log=log, progress=update))
    return results
