"""How to open an artifact: device, ONNX Runtime providers and threads, denormals, CUDA graphs."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SegdeployError


@dataclass(frozen=True)
class BackendOptions:
    device: str = "cpu"  # PyTorch device; engines run on the GPU of its CUDA index
    providers: tuple[str, ...] | None = None  # ONNX Runtime execution providers [CPU]
    threads: int = 0  # ONNX Runtime intra-op threads; 0: the library's default
    flush_denormal: bool = True  # ONNX Runtime: denormals as zero
    cuda_graph: bool = False  # TensorRT: replay the enqueue as a CUDA graph
    torch_variant: str = "channels_last"  # PyTorch: one of TORCH_VARIANTS
    logits: bool = False  # PyTorch: return logits even when the model ends in an argmax (the parity reference)

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise SegdeployError(f"--threads {self.threads}: expected 0 (the library's default) or more")


def cuda_index(device: str) -> int:
    """'cuda:1' -> 1; 'cuda', 'cpu' or 'auto' -> 0 (engines always run on a GPU)."""
    head, _, index = device.partition(":")
    return int(index) if head == "cuda" and index.isdigit() else 0


TORCH_VARIANTS = ("eager", "channels_last", "autocast", "compile", "cudagraph")
