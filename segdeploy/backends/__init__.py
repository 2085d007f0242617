"""Inference backends behind one interface: uint8 frames in, logits or class maps out."""

from __future__ import annotations

from pathlib import Path

from .base import Backend


def open_backend(path: Path, device: str = "cpu", providers: list[str] | None = None, threads: int = 0) -> Backend:
    """Open an artifact with the backend its file type calls for."""
    from ..errors import SegdeployError

    if not path.exists():
        raise SegdeployError(f"{path}: file not found")
    if path.suffix in (".pt", ".pth"):
        from .torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(path, device=device)
    if path.suffix == ".onnx":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, providers=providers, threads=threads)
    raise SegdeployError(f"{path}: not a model artifact (expected a .pt checkpoint or an .onnx model)")


__all__ = ["Backend", "open_backend"]
