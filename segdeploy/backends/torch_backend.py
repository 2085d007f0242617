"""PyTorch backend (CPU or CUDA): the reference every exported artifact is compared against.

Variants for bench: channels-last memory format (default) or plain NCHW ("eager"), autocast to
bfloat16 (CPU) or float16 (CUDA), torch.compile, and CUDA-graph replay (CUDA only: the forward pass is
captured once per input shape into static buffers and replayed). On CUDA, host-to-device copy, compute
and device-to-host copy of each call are timed with CUDA events (`timings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SegdeployError
from ..meta import AcceptedShapes, IOSpec, ModelMeta
from ..models.adapter import LogitsAdapter
from ..models.checkpoint import load_model
from ..models.deploy_module import DeployModule
from ..precision_table import FP32
from .base import BackendBase, MemoryUse
from .options import TORCH_VARIANTS, BackendOptions


def pick_device(device: str) -> torch.device:
    """A PyTorch device from 'auto', 'cpu', 'cuda' or 'cuda:N', or one line saying why not."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise SegdeployError(f"--device '{device}': expected auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SegdeployError(f"device '{device}' requested but CUDA is not available on this machine")
    if chosen.type not in ("cpu", "cuda"):
        raise SegdeployError(f"--device '{device}': expected auto, cpu, cuda or cuda:N")
    return chosen


class TorchBackend(BackendBase):
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
        cuda_graph: bool = False,
    ) -> None:
        self.meta = meta
        self.label = label
        self.device = pick_device(device)
        self.channels_last = channels_last
        self.autocast = autocast
        self.compiled = compile
        self.precision = {None: FP32.name, torch.bfloat16: "bf16-autocast", torch.float16: "fp16-autocast"}[autocast]
        with_argmax = meta.io.argmax if argmax is None else argmax
        self._argmax = with_argmax
        module = DeployModule(model, meta.recipe.mean, meta.recipe.std, IOSpec(True, with_argmax))
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.module: Any = module.to(self.device).to(memory_format=memory_format).eval()
        if compile:
            self.module = torch.compile(self.module, dynamic=False)
        if cuda_graph and self.device.type != "cuda":
            raise SegdeployError(f"{label}: CUDA graphs need a CUDA device, not {self.device}")
        self.cuda_graph = cuda_graph
        self.graphs: dict[tuple[int, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_checkpoint(
        cls, path: Path, device: str = "cpu", argmax: bool | None = None, **variant: Any
    ) -> TorchBackend:
        model, meta, _ = load_model(path)
        return cls(model, meta, device=device, label=path.name, argmax=argmax, **variant)

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> TorchBackend:
        """A checkpoint in one of TORCH_VARIANTS: eager is plain NCHW, the others channels-last."""
        variant = options.torch_variant
        if variant not in TORCH_VARIANTS:
            raise SegdeployError(f"--torch-variant '{variant}': choose {', '.join(TORCH_VARIANTS)}")
        autocast = None
        if variant == "autocast":
            autocast = torch.float16 if options.device.startswith("cuda") else torch.bfloat16
        return cls.from_checkpoint(
            path,
            device=options.device,
            argmax=False if options.logits else None,
            channels_last=variant != "eager",
            autocast=autocast,
            compile=variant == "compile",
            cuda_graph=variant == "cudagraph",
        )

    def settings(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "channels_last": self.channels_last,
            "compile": self.compiled,
            "autocast": None if self.autocast is None else str(self.autocast).removeprefix("torch."),
            "threads": torch.get_num_threads(),
            "cuda_graph": self.cuda_graph,
        }

    def accepted_shapes(self) -> AcceptedShapes:
        """Any size the network takes: multiples of its stride."""
        return AcceptedShapes.any_size()

    def memory(self) -> MemoryUse:
        """Weights and buffers on the host (CPU) or PyTorch's peak allocation on the device (CUDA)."""
        if self.device.type == "cuda":
            return {"host_bytes": 0, "device_bytes": int(torch.cuda.max_memory_allocated(self.device))}
        tensors = [*self.module.parameters(), *self.module.buffers()]
        return {"host_bytes": sum(t.numel() * t.element_size() for t in tensors), "device_bytes": 0}

    @property
    def ends_in_argmax(self) -> bool:
        """The module's argmax, which may differ from the metadata's (parity's reference gives logits)."""
        return self._argmax

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames)  # normalisation runs inside the module, on the device

    def _forward(self, feed: torch.Tensor) -> torch.Tensor:
        # cache_enabled=False: autocast's weight cast cache must not outlive a CUDA-graph capture.
        with torch.autocast(
            self.device.type,
            dtype=self.autocast or torch.float32,
            enabled=self.autocast is not None,
            cache_enabled=not self.cuda_graph,
        ):
            out: torch.Tensor = self.module(feed)
        return out

    def _graph(self, feed: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The captured forward pass for this input shape, with its static input and output."""
        shape = tuple(feed.shape)
        if shape not in self.graphs:
            static_in = torch.zeros_like(feed, device=self.device)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):  # warm-up outside the capture, as PyTorch's CUDA-graph notes ask
                for _ in range(3):
                    self._forward(static_in)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self.graphs[shape] = (graph, static_in, static_out)
        return self.graphs[shape]

    @torch.inference_mode()
    def _infer(self, feed: torch.Tensor) -> np.ndarray:
        if self.device.type != "cuda":
            return self._to_host(self._forward(feed))
        graphed = self._graph(feed) if self.cuda_graph else None  # capture (first call) is not timed
        events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        events[0].record()
        if graphed is not None:
            graph, static_in, static_out = graphed
            static_in.copy_(feed, non_blocking=True)
            events[1].record()
            graph.replay()
            out = static_out
        else:
            on_device = feed.to(self.device, non_blocking=True)
            events[1].record()
            out = self._forward(on_device)
        events[2].record()
        result = self._to_host(out)
        events[3].record()
        events[3].synchronize()
        self.stages = {
            "h2d": events[0].elapsed_time(events[1]),
            "compute": events[1].elapsed_time(events[2]),
            "d2h": events[2].elapsed_time(events[3]),
        }
        return result

    @staticmethod
    def _to_host(out: torch.Tensor) -> np.ndarray:
        return out.float().cpu().numpy() if out.is_floating_point() else out.cpu().numpy()

    def _release(self) -> None:
        self.graphs.clear()
        del self.module
