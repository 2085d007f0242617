"""Inference backends behind one interface: uint8 frames in, logits or class maps out."""

from __future__ import annotations

from pathlib import Path

from .base import Backend

ENGINE_SUFFIXES = (".plan", ".engine", ".trt")


def cuda_index(device: str) -> int:
    """'cuda:1' -> 1; 'cuda', 'cpu' or 'auto' -> 0 (engines always run on a GPU)."""
    head, _, index = device.partition(":")
    return int(index) if head == "cuda" and index.isdigit() else 0


def open_backend(
    path: Path,
    device: str = "cpu",
    providers: list[str] | None = None,
    threads: int = 0,
    cuda_graph: bool = False,
) -> Backend:
    """Open an artifact with the backend its file type calls for: .pt/.pth PyTorch, .onnx ONNX Runtime,
    .plan/.engine/.trt TensorRT."""
    from ..errors import SegdeployError

    if not path.exists():
        raise SegdeployError(f"{path}: file not found")
    if path.suffix in (".pt", ".pth"):
        from .torch_backend import TorchBackend

        return TorchBackend.from_checkpoint(path, device=device)
    if path.suffix == ".onnx":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, providers=providers, threads=threads)
    if path.suffix in ENGINE_SUFFIXES:
        from ..tensorrt import require_tensorrt

        require_tensorrt(str(path))
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, device=cuda_index(device), cuda_graph=cuda_graph)
    raise SegdeployError(
        f"{path}: not a model artifact (expected a .pt checkpoint, an .onnx model or a .plan TensorRT engine)"
    )


__all__ = ["Backend", "open_backend"]
