"""PyTorch backend (CPU or CUDA): the reference every exported artifact is compared against.

Variants for bench: channels-last memory format (default) or plain NCHW ("eager"), autocast to
bfloat16 (CPU) or float16 (CUDA), and torch.compile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..export.deploy_module import DeployModule
from ..meta import IOSpec, ModelMeta
from ..models.adapter import LogitsAdapter
from ..models.checkpoint import load_model
from .base import check_frames


class TorchBackend:
    name = "pytorch"

    def __init__(
        self,
        model: LogitsAdapter,
        meta: ModelMeta,
        device: str = "cpu",
        label: str = "pytorch",
        argmax: bool | None = None,
        channels_last: bool = True,
        autocast: torch.dtype | None = None,
        compile: bool = False,
    ) -> None:
        self.meta = meta
        self.label = label
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.autocast = autocast
        self.compiled = compile
        self.precision = {None: "fp32", torch.bfloat16: "bf16-autocast", torch.float16: "fp16-autocast"}[autocast]
        with_argmax = meta.io.argmax if argmax is None else argmax
        module = DeployModule(model, meta.recipe.mean, meta.recipe.std, IOSpec(True, with_argmax))
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.module: Any = module.to(self.device).to(memory_format=memory_format).eval()
        if compile:
            self.module = torch.compile(self.module, dynamic=False)

    @classmethod
    def from_checkpoint(
        cls, path: Path, device: str = "cpu", argmax: bool | None = None, **variant: Any
    ) -> TorchBackend:
        model, meta, _ = load_model(path)
        return cls(model, meta, device=device, label=path.name, argmax=argmax, **variant)

    def settings(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "channels_last": self.channels_last,
            "compile": self.compiled,
            "autocast": None if self.autocast is None else str(self.autocast).removeprefix("torch."),
            "threads": torch.get_num_threads(),
        }

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        check_frames(frames)
        return torch.from_numpy(frames)  # normalisation runs inside the module, on the device

    @torch.inference_mode()
    def infer(self, feed: torch.Tensor) -> np.ndarray:
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            out = self.module(feed.to(self.device, non_blocking=True))
        return out.float().cpu().numpy() if out.is_floating_point() else out.cpu().numpy()

    def run(self, frames: np.ndarray) -> np.ndarray:
        return self.infer(self.prepare(frames))
