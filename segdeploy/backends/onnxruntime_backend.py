"""ONNX Runtime backend: CPU by default, CUDA or TensorRT execution providers when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.metadata import read_onnx_metadata
from ..errors import SegdeployError
from ..meta import AcceptedShapes
from .base import BackendBase, MemoryUse, Timings
from .options import BackendOptions

# ONNX Runtime's WeightBiasQuantization transformer (1.32) turns the float bias of a DQ-weighted Conv into
# int32 at input scale x weight scale. TensorRT keeps such biases float (precision/int8.py), and with
# float16 scales (model.int8-fp16.onnx) that product underflows: on a small U-Net it moved logits by up
# to 3.2 where the graph as written stays within 0.25 of its FP32-remainder twin. Q/DQ graphs run as
# written; graphs without Q/DQ are untouched by it.
DISABLED_OPTIMIZERS = ["WeightBiasQuantization"]


def _session(ort: Any, path: Path, options: Any, providers: list[str]) -> tuple[Any, bool]:
    """The inference session and whether its Q/DQ fusions are on. ONNX Runtime 1.32 fuses DQ -> Concat -> Q
    into QLinearConcat even where the scales are float16, which that kernel refuses at load (INVALID_GRAPH):
    such a graph loads again with its Q/DQ nodes run as written (session.disable_quant_qdq)."""
    try:
        return ort.InferenceSession(str(path), options, providers, disabled_optimizers=DISABLED_OPTIMIZERS), True
    except Exception as exc:
        reason = str(exc).splitlines()[0]
        if "float16" not in reason:
            raise SegdeployError(f"{path}: ONNX Runtime cannot load it ({reason})") from None
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(str(path), options, providers, disabled_optimizers=DISABLED_OPTIMIZERS), False
    except Exception as exc:
        raise SegdeployError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None


class OnnxRuntimeBackend(BackendBase):
    name = "onnxruntime"

    def __init__(
        self, path: Path, providers: list[str] | None = None, threads: int = 0, flush_denormal: bool = True
    ) -> None:
        import onnxruntime as ort

        self.path = path
        self.label = path.name
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise SegdeployError(
                f"{path}: ONNX Runtime provider {missing[0]} not available (have: {', '.join(available)})"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.set_denormal_as_zero", "1" if flush_denormal else "0")
        self.threads, self.flush_denormal = threads, flush_denormal
        self.session, self.qdq_fusions = _session(ort, path, options, wanted)
        self.meta, self.precision = read_onnx_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        outputs = [[d if isinstance(d, int) else None for d in o.shape] for o in self.session.get_outputs()]
        self.meta.check_outputs(outputs, str(path))
        graph_input = self.session.get_inputs()[0]
        self.input_name = graph_input.name
        dims = [d if isinstance(d, int) else None for d in graph_input.shape]
        self.shapes = AcceptedShapes.of_input(self.meta.io, dims, dims)
        self.providers = self.session.get_providers()

    @classmethod
    def open(cls, path: Path, options: BackendOptions) -> OnnxRuntimeBackend:
        providers = None if options.providers is None else list(options.providers)
        return cls(path, providers=providers, threads=options.threads, flush_denormal=options.flush_denormal)

    def settings(self) -> dict[str, Any]:
        return {
            "providers": self.providers,
            "intra_op_threads": self.threads or "default",
            "denormal_as_zero": self.flush_denormal,
            "qdq_fusions": self.qdq_fusions,
        }

    def accepted_shapes(self) -> AcceptedShapes:
        """Fixed dimensions of the graph's input; any size for its dynamic ones."""
        return self.shapes

    def timings(self) -> Timings | None:
        return None  # ONNX Runtime does not split copies from compute

    def memory(self) -> MemoryUse:
        """The weights (the file's size) on the host; device memory of GPU providers is not reported."""
        on_cpu = self.providers == ["CPUExecutionProvider"]
        return {"host_bytes": self.path.stat().st_size, "device_bytes": 0 if on_cpu else None}

    def _prepare(self, frames: np.ndarray) -> np.ndarray:
        return self.meta.feed(frames)

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(self.session.run(None, {self.input_name: feed})[0])
        except Exception as exc:  # ONNX Runtime's own errors (allocation, shapes) carry no common base class
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SegdeployError(f"{self.label}: ONNX Runtime failed on input {tuple(feed.shape)} ({reason})") from None

    def _release(self) -> None:
        del self.session
