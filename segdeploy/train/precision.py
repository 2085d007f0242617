"""Mixed precision for training (recipe key train.amp) and the memory format (train.channels_last).

On CUDA: bfloat16 autocast where the GPU supports it (Ampere and later), else float16 with a
GradScaler, whose loss scaling keeps small float16 gradients from flushing to zero. On CPUs: bfloat16
autocast only where the CPU computes it natively (AVX512-BF16 or AMX), where training runs 2-4x
faster (benchmarks/RESULTS.md); elsewhere bfloat16 is emulated and slower than float32, and float16 on
a CPU is slower still, so amp means float32 there. bfloat16 has float32's range: no scaler.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # None: float32
    channels_last: bool

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for float16."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def describe(self) -> str:
        dtype = "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.") + " autocast"
        return f"{dtype}{', channels-last' if self.channels_last else ''}"


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def choose_precision(device: torch.device, amp: bool, channels_last: bool) -> Precision:
    return Precision(device, autocast_dtype(device, amp), channels_last)
