"""The precision table: per precision (fp32, fp16, int8, bf16) its ONNX file names (INT8: also one for CPUs),
manifest kind, export validation tolerance, TensorRT build flags and default accuracy-drop gate. Every other
module asks it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SegdeployError


@dataclass(frozen=True)
class PrecisionTolerance:
    """How far a reduced-precision artifact may drift from the FP32 reference on real data."""

    miou_delta: float
    pixel_agreement: float


@dataclass(frozen=True)
class LogitTolerance:
    """Per image: |output - reference| <= atol + rtol * max |reference logit|. The relative part keeps a
    model with large logits (hundreds) from failing on float rounding that an absolute bound calls drift."""

    atol: float
    rtol: float

    def allowed(self, reference: np.ndarray) -> np.ndarray:
        """The bound per image of reference logits (N, C, H, W), shaped (N, 1, 1, 1)."""
        scale = np.abs(reference).max(axis=(1, 2, 3), keepdims=True)
        bound: np.ndarray = self.atol + self.rtol * scale
        return bound

    def excess(self, reference: np.ndarray, output: np.ndarray) -> float:
        """How far the worst image exceeds its bound (<= 0: every image is within it)."""
        diff = np.abs(output.astype(np.float64) - reference).max(axis=(1, 2, 3), keepdims=True)
        return float((diff - self.allowed(reference)).max())

    def __str__(self) -> str:
        return f"{self.atol:.0e} + {self.rtol:.0e} x max |logit|"


@dataclass(frozen=True)
class Precision:
    name: str  # as the manifest's and the ONNX metadata's "precision" record it
    graph_file: str  # the ONNX graph `segdeploy export` writes
    strongly_typed_file: str  # the graph TensorRT >= 10 builds strongly typed (INT8: the FP16-remainder twin)
    kind: str  # the manifest "kind" of that graph
    validation: LogitTolerance  # its logits against the reference on probe frames (FP16/INT8: recorded)
    typed_flags: tuple[str, ...]  # TensorRT < 10 (no strongly typed networks): BuilderFlags for a graph of this type
    request_flags: tuple[str, ...]  # TensorRT <= 10.x: BuilderFlags to build this from the FP32 graph
    calibrates: bool  # that builder-flag path calibrates (the implicit INT8 calibrator)
    gate: PrecisionTolerance  # the default accuracy-drop gate against the reference (recipe: tolerance)
    parity_logits: bool  # parity also holds its logits to `validation`
    # A graph for ONNX Runtime's x86 CPU kernels only, held to the same gate; TensorRT builds skip it. "": none.
    cpu_file: str = ""


# BuilderFlag.OBEY_PRECISION_CONSTRAINTS (TensorRT 8.2-10.x): with FP16 enabled through builder flags, the
# layers segdeploy pins to FP32 (tensorrt/constraints.py: the FP16 block list) stay FP32; without it
# TensorRT treats layer precisions as hints (PREFER_PRECISION_CONSTRAINTS would fall back silently).
OBEY = "OBEY_PRECISION_CONSTRAINTS"

FP32 = Precision(
    name="fp32",
    graph_file="model.onnx",
    strongly_typed_file="model.onnx",
    kind="onnx",
    validation=LogitTolerance(atol=1e-3, rtol=1e-5),
    typed_flags=(),
    request_flags=(),
    calibrates=False,
    gate=PrecisionTolerance(miou_delta=1e-3, pixel_agreement=0.999),
    parity_logits=True,
)
FP16 = Precision(
    name="fp16",
    graph_file="model.fp16.onnx",
    strongly_typed_file="model.fp16.onnx",
    kind="onnx",
    validation=LogitTolerance(atol=1e-2, rtol=1e-2),
    typed_flags=("FP16", OBEY),
    request_flags=("FP16", OBEY),
    calibrates=False,
    gate=PrecisionTolerance(miou_delta=0.002, pixel_agreement=0.995),
    parity_logits=False,
)
INT8 = Precision(
    name="int8",
    graph_file="model.int8.onnx",  # FP32 remainder, the recipe's opset: ONNX Runtime's check, TensorRT 8.x, DLA
    strongly_typed_file="model.int8-fp16.onnx",  # FP16 remainder, opset >= 19 (precision/int8_fp16.py)
    kind="onnx",
    validation=LogitTolerance(atol=0.1, rtol=0.1),
    # The Q/DQ graph with flags (8.x, DLA): FP16 allowed so the float remainder runs FP16, not FP32; OBEY keeps
    # the FP16 block list's layers (constraints.py) in FP32 as model.int8-fp16.onnx does.
    typed_flags=("INT8", "FP16", OBEY),
    # FP16 allowed too: layers without an INT8 kernel fall back to FP16 rather than FP32.
    request_flags=("INT8", "FP16", OBEY),
    calibrates=True,
    gate=PrecisionTolerance(miou_delta=0.01, pixel_agreement=0.98),
    parity_logits=False,
    cpu_file="model.int8-cpu.onnx",  # U8S8, ONNX Runtime's own Q/DQ placement (quantize/int8_cpu.py)
)
# BF16 is no graph of its own: a backend runs the FP32 graph's float ops in bfloat16 when asked (OpenVINO's
# inference-precision hint, on CPUs with native BF16). 8 mantissa bits against FP16's 11: a looser gate.
BF16 = Precision(
    name="bf16",
    graph_file="model.onnx",
    strongly_typed_file="model.onnx",
    kind="onnx",
    validation=LogitTolerance(atol=5e-2, rtol=2e-2),
    typed_flags=(),
    request_flags=(),
    calibrates=False,
    gate=PrecisionTolerance(miou_delta=0.005, pixel_agreement=0.99),
    parity_logits=False,
)
PRECISIONS = {p.name: p for p in (FP32, FP16, INT8, BF16)}
REDUCED = (FP16, INT8)  # the ones builder flags can request from the FP32 graph


def precision(name: str, subject: str = "precision") -> Precision:
    """The row for `name`, or a one-line error naming `subject`."""
    if name not in PRECISIONS:
        raise SegdeployError(f"{subject}: unknown precision '{name}' (known: {', '.join(PRECISIONS)})")
    return PRECISIONS[name]
