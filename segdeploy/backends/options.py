"""How to open an artifact: which backend, device, ONNX Runtime providers, threads, denormals, CUDA graphs."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import SegdeployError


@dataclass(frozen=True)
class BackendOptions:
    device: str = "cpu"  # PyTorch device; engines run on the GPU of its CUDA index
    backend: str | None = None  # the backend (table row name) for a kind several run (ONNX); None: the first
    inference_precision: str | None = None  # float ops in this precision (OpenVINO: bf16); None: as the graph
    providers: tuple[str, ...] | None = None  # ONNX Runtime execution providers [CPU]
    threads: int = 0  # ONNX Runtime and OpenVINO inference threads; 0: the library's default
    flush_denormal: bool = True  # ONNX Runtime and OpenVINO: denormals as zero
    cuda_graph: bool = False  # TensorRT: replay the enqueue as a CUDA graph
    torch_variant: str = "channels_last"  # PyTorch: one of TORCH_VARIANTS
    logits: bool = False  # PyTorch: return logits even when the model ends in an argmax (the parity reference)

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise SegdeployError(f"--threads {self.threads}: expected 0 (the library's default) or more")
        if self.threads > usable_cores():
            raise SegdeployError(
                f"--threads {self.threads}: this process may use {usable_cores()} cores; more threads than cores "
                "only contend (0: the library's default)"
            )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cuda_index(device: str) -> int:
    """'cuda:1' -> 1; 'cuda', 'cpu' or 'auto' -> 0 (engines always run on a GPU)."""
    head, _, index = device.partition(":")
    return int(index) if head == "cuda" and index.isdigit() else 0


TORCH_VARIANTS = ("eager", "channels_last", "autocast", "compile", "cudagraph")
