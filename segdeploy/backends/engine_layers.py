"""`segdeploy inspect`: which precision each layer of a TensorRT engine runs in, from TensorRT's own
engine inspector, read through the TensorRT backend (deserialised with the device's context current)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..errors import SegdeployError
from ..tensorrt.inspection import EngineLayers, parse_engine_information
from .table import open_backend, row_for

if TYPE_CHECKING:
    from .tensorrt_backend import TensorRTBackend

ENGINES = "tensorrt"


def inspect_engine(engine: Path, device: int = 0) -> EngineLayers:
    """Per-layer types and input/output precisions of `engine` (built by `segdeploy build`) on CUDA
    device `device`; `detailed` is False when it was built without ProfilingVerbosity.DETAILED."""
    kind = row_for(engine, "TensorRT engine").kind
    if kind != ENGINES:
        raise SegdeployError(f"{engine}: not a TensorRT engine (kind {kind}); build one with 'segdeploy build'")
    with open_backend(engine, device=f"cuda:{device}") as backend:
        text = cast("TensorRTBackend", backend).layer_information()
    return parse_engine_information(text, engine)
