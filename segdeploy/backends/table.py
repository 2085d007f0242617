"""The backend table: per artifact kind, the backend class that runs it, its file suffixes and what it
can do. Opening, parity, bench, predict, report and the runtime all go through it; adding a backend
(OpenVINO, say) is one module and one row."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SegdeployError
from ..integrity import verify_artifact
from ..tensorrt import INSTALL_HINT, tensorrt_available
from .base import Backend
from .options import BackendOptions


def _always() -> bool:
    return True


@dataclass(frozen=True)
class BackendRow:
    kind: str  # the artifact kind, as the export manifest records it
    module: str  # the module of the backend class, imported only when an artifact of this kind opens
    cls: str
    suffixes: tuple[str, ...]
    # "reference": the PyTorch reference parity compares against; "torch_variants": bench opens one per
    # PyTorch variant; "cuda_graphs": bench opens it without and with CUDA-graph replay; "runtime": the
    # torch-free runtime (segdeploy.runtime) runs it.
    capabilities: frozenset[str]
    available: Callable[[], bool] = _always  # whether this machine has the backend's libraries
    missing: str = ""  # what to install when it has not

    def backend_class(self) -> Any:
        return getattr(importlib.import_module(self.module, __package__), self.cls)


TABLE = (
    BackendRow(
        "pytorch", ".torch_backend", "TorchBackend", (".pt", ".pth"), frozenset({"reference", "torch_variants"})
    ),
    BackendRow("onnx", ".onnxruntime_backend", "OnnxRuntimeBackend", (".onnx",), frozenset({"runtime"})),
    BackendRow(
        "tensorrt",
        ".tensorrt_backend",
        "TensorRTBackend",
        (".plan", ".engine", ".trt"),
        frozenset({"cuda_graphs", "runtime"}),
        tensorrt_available,
        INSTALL_HINT,
    ),
)


def _expected() -> str:
    return ", ".join(f"{'/'.join(row.suffixes)} ({row.kind})" for row in TABLE)


def row_for(path: Path, what: str = "model artifact") -> BackendRow:
    """The row whose suffixes include `path`'s, or a one-line error naming the file (and `what` it is not)."""
    for row in TABLE:
        if path.suffix in row.suffixes:
            return row
    raise SegdeployError(f"{path}: not a {what} (expected {_expected()})")


def row_of_kind(kind: str) -> BackendRow | None:
    return next((row for row in TABLE if row.kind == kind), None)


def open_backend(path: Path, options: BackendOptions | None = None, **changes: Any) -> Backend:
    """Open an artifact with the backend its file type calls for; `changes` replace fields of `options`."""
    options = dataclasses.replace(options or BackendOptions(), **changes)
    if not path.exists():
        raise SegdeployError(f"{path}: file not found")
    row = row_for(path)
    if not row.available():
        raise SegdeployError(f"{path}: {row.missing}")
    verify_artifact(path)
    backend: Backend = row.backend_class().open(path, options)
    return backend


def open_variants(
    path: Path, options: BackendOptions, torch_variants: tuple[str, ...], cuda_graphs: tuple[bool, ...]
) -> list[Backend]:
    """One backend per artifact, per PyTorch variant for a checkpoint, per CUDA-graph setting for an engine."""
    row = row_for(path, "benchmarkable artifact")
    if "torch_variants" in row.capabilities:
        backends = []
        for variant in torch_variants:
            backend = open_backend(path, options, torch_variant=variant)
            backend.label = f"{path.name} [{variant}]"
            backends.append(backend)
        return backends
    if "cuda_graphs" in row.capabilities:
        return [open_backend(path, options, cuda_graph=graph) for graph in cuda_graphs]
    return [open_backend(path, options)]
