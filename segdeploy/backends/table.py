"""The backend table: per artifact kind, the backend class that runs it, its file suffixes and what it
can do. Opening, parity, bench, predict, report, compare, export validation and the runtime all go
through it; adding a backend (OpenVINO, say) is one module and one row."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts.integrity import verify_artifact
from ..errors import SegdeployError
from ..tensorrt import INSTALL_HINT, tensorrt_available
from .base import Backend
from .options import BackendOptions


def _always() -> bool:
    return True


@dataclass(frozen=True)
class BackendRow:
    kind: str  # the artifact kind: the "kind" of its entry in the export manifest
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
        if path.suffix.lower() in row.suffixes:
            return row
    raise SegdeployError(f"{path}: not a {what} (expected {_expected()})")


def row_of_kind(kind: str) -> BackendRow | None:
    return next((row for row in TABLE if row.kind == kind), None)


def open_backend(path: Path, options: BackendOptions | None = None, kind: str | None = None, **changes: Any) -> Backend:
    """Open an artifact with the backend its file type (or `kind`, for a file under a temporary name) calls
    for; `changes` replace fields of `options`."""
    options = dataclasses.replace(options or BackendOptions(), **changes)
    if not path.exists():
        raise SegdeployError(f"{path}: file not found")
    row = row_for(path) if kind is None else row_of_kind(kind)
    if row is None:
        raise SegdeployError(f"{path}: no backend runs artifacts of kind '{kind}'")
    if not row.available():
        raise SegdeployError(f"{path}: {row.missing}")
    verify_artifact(path)
    backend: Backend = row.backend_class().open(path, options)
    return backend


def open_variants(
    path: Path, options: BackendOptions, torch_variants: tuple[str, ...], cuda_graphs: tuple[bool, ...]
) -> list[Backend]:
    """One backend per artifact, per PyTorch variant for a checkpoint, per CUDA-graph setting for an engine;
    the caller closes them (all are closed when one fails to open)."""
    row = row_for(path, "benchmarkable artifact")
    changes: list[dict[str, Any]] = [{}]
    if "torch_variants" in row.capabilities:
        changes = [{"torch_variant": variant} for variant in torch_variants]
    elif "cuda_graphs" in row.capabilities:
        changes = [{"cuda_graph": graph} for graph in cuda_graphs]
    with contextlib.ExitStack() as opened:
        backends = [opened.enter_context(open_backend(path, options, **change)) for change in changes]
        if "torch_variants" in row.capabilities:
            for backend, variant in zip(backends, torch_variants):
                backend.label = f"{path.name} [{variant}]"
        opened.pop_all()
    return backends


@contextlib.contextmanager
def open_all(paths: Sequence[Path], options: BackendOptions | None = None, **changes: Any) -> Iterator[list[Backend]]:
    """`with open_all(paths) as backends:` one backend per path, all closed on leaving."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(open_backend(path, options, **changes)) for path in paths]
