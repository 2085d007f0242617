"""The backend table: per artifact kind, the backend class that runs it, its file suffixes and what it
can do. Opening, parity, bench, predict, report, compare, export validation and the runtime all go
through it; adding a backend is one module and one row. Where several rows run one kind (ONNX models:
ONNX Runtime, OpenVINO) the first is the default and `--backend NAME[:PRECISION]` picks another."""

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
from ..precision_table import BF16
from ..tensorrt import INSTALL_HINT, tensorrt_available
from .base import Backend
from .options import BackendOptions


def _always() -> bool:
    return True


def _importable(module: str) -> Callable[[], bool]:
    def available() -> bool:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
        return True

    return available


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
    name: str = ""  # the backend's name, as --backend and result rows spell it
    inference_precisions: tuple[str, ...] = ()  # what `--backend NAME:PRECISION` may ask its float ops to run in

    def backend_class(self) -> Any:
        return getattr(importlib.import_module(self.module, __package__), self.cls)


TABLE = (
    BackendRow(
        "pytorch",
        ".torch_backend",
        "TorchBackend",
        (".pt", ".pth"),
        frozenset({"reference", "torch_variants"}),
        name="pytorch",
    ),
    BackendRow(
        "onnx", ".onnxruntime_backend", "OnnxRuntimeBackend", (".onnx",), frozenset({"runtime"}), name="onnxruntime"
    ),
    BackendRow(
        "tensorrt",
        ".tensorrt_backend",
        "TensorRTBackend",
        (".plan", ".engine", ".trt"),
        frozenset({"cuda_graphs", "runtime"}),
        tensorrt_available,
        INSTALL_HINT,
        name="tensorrt",
    ),
    BackendRow(
        "onnx",
        ".openvino_backend",
        "OpenVINOBackend",
        (".onnx",),
        frozenset({"runtime"}),
        _importable("openvino"),
        'OpenVINO is not installed: pip install "segdeploy[openvino]"',
        name="openvino",
        inference_precisions=(BF16.name,),
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


def backend_choice(text: str) -> dict[str, Any]:
    """`--backend NAME[:PRECISION]` ('openvino', 'openvino:bf16') as BackendOptions changes, or one line
    naming the backends and precisions there are."""
    name, _, wanted = text.partition(":")
    row = next((row for row in TABLE if row.name == name), None)
    if row is None:
        raise SegdeployError(f"--backend '{text}': unknown backend (choose {', '.join(r.name for r in TABLE)})")
    if wanted and wanted not in row.inference_precisions:
        offered = ", ".join(f"{r.name}:{p}" for r in TABLE for p in r.inference_precisions)
        raise SegdeployError(f"--backend '{text}': {name} takes no precision '{wanted}' (there are: {offered})")
    return {"backend": name, "inference_precision": wanted or None}


def _choices_for(row: BackendRow, backends: Sequence[str]) -> list[dict[str, Any]]:
    """The `backends` choices that run `row`'s kind of artifact."""
    choices = map(backend_choice, backends)
    return [c for c in choices if any(r.name == c["backend"] and r.kind == row.kind for r in TABLE)]


def _row_to_open(path: Path, options: BackendOptions, kind: str | None) -> BackendRow:
    row = row_for(path) if kind is None else row_of_kind(kind)
    if row is None:
        raise SegdeployError(f"{path}: no backend runs artifacts of kind '{kind}'")
    if options.backend is None or options.backend == row.name:
        return row
    chosen = next((r for r in TABLE if r.name == options.backend and r.kind == row.kind), None)
    if chosen is None:
        runs = [r.name for r in TABLE if r.kind == row.kind]
        raise SegdeployError(f"{path}: --backend {options.backend} does not run it (these do: {', '.join(runs)})")
    return chosen


def open_backend(path: Path, options: BackendOptions | None = None, kind: str | None = None, **changes: Any) -> Backend:
    """Open an artifact with the backend its file type (or `kind`, for a file under a temporary name) calls
    for; `changes` replace fields of `options`."""
    options = dataclasses.replace(options or BackendOptions(), **changes)
    if not path.exists():
        raise SegdeployError(f"{path}: file not found")
    row = _row_to_open(path, options, kind)
    if not row.available():
        raise SegdeployError(f"{path}: {row.missing}")
    verify_artifact(path)
    backend: Backend = row.backend_class().open(path, options)
    return backend


def open_variants(
    path: Path,
    options: BackendOptions,
    torch_variants: tuple[str, ...],
    cuda_graphs: tuple[bool, ...],
    backends: tuple[str, ...] = (),
) -> list[Backend]:
    """One backend per artifact, per PyTorch variant for a checkpoint, per CUDA-graph setting for an engine,
    per `backends` choice (`NAME[:PRECISION]`) that runs its kind (none: the kind's first backend); the
    caller closes them (all are closed when one fails to open)."""
    row = row_for(path, "benchmarkable artifact")
    changes: list[dict[str, Any]] = [{}]
    chosen = _choices_for(row, backends)
    if chosen:
        changes = chosen
    elif "torch_variants" in row.capabilities:
        changes = [{"torch_variant": variant} for variant in torch_variants]
    elif "cuda_graphs" in row.capabilities:
        changes = [{"cuda_graph": graph} for graph in cuda_graphs]
    with contextlib.ExitStack() as opened:
        variants = [opened.enter_context(open_backend(path, options, **change)) for change in changes]
        if "torch_variants" in row.capabilities:
            for backend, variant in zip(variants, torch_variants):
                backend.label = f"{path.name} [{variant}]"
        opened.pop_all()
    return variants


@contextlib.contextmanager
def open_all(
    paths: Sequence[Path], options: BackendOptions | None = None, backend: str | None = None, **changes: Any
) -> Iterator[list[Backend]]:
    """`with open_all(paths) as backends:` one backend per path, all closed on leaving; `backend`
    (NAME[:PRECISION]) runs the paths of the kind it runs, the others open with their default backend."""
    with contextlib.ExitStack() as stack:
        opened = []
        for path in paths:
            chosen = _choices_for(row_for(path), [backend] if backend else [])
            opened.append(stack.enter_context(open_backend(path, options, **changes, **(chosen[0] if chosen else {}))))
        yield opened
