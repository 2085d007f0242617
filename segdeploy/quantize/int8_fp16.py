"""The INT8 graph for TensorRT >= 10: the same Q/DQ nodes and scales, the float remainder in FP16.

A strongly typed build runs every tensor in the type the graph gives it, so a Q/DQ graph whose float
remainder (decoder, logits, pooling, the tensors between fused kernels) is FP32 runs that remainder in FP32
and can end up slower than the FP16 engine. NVIDIA ModelOpt's ONNX PTQ writes the remainder in FP16
(high_precision_dtype="fp16") for this reason; so do we, with FP16_BLOCK_LIST's ops kept in FP32 as in
model.fp16.onnx. Q/DQ scales become FP16, which QuantizeLinear/DequantizeLinear accept from opset 19 (the
ONNX operator changelog: T1/T2 gained float16 at 19), so the graph is raised to opset 19 when lower.
TensorRT 8.5/8.6 parse operators up to opset 17 (NVIDIA's "TensorRT 8.6 supports operators up to Opset 17"),
which is why model.int8.onnx, FP32 remainder at the recipe's opset, stays beside this one for them: on
8.x it is built with the INT8 and FP16 builder flags, which lets TensorRT pick FP16 for the remainder.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import version_converter

from ..artifacts.manifest import opset_of
from ..errors import SegdeployError
from ..files import atomic_path
from .fp16 import fp16_model

FP16_QDQ_OPSET = 19


def write_int8_fp16(int8: Path, target: Path) -> list[str]:
    """Write `int8`'s Q/DQ graph with its float remainder in FP16 to `target`; returns the op types kept FP32."""
    model = onnx.load(str(int8))
    if opset_of(model) < FP16_QDQ_OPSET:
        try:
            model = version_converter.convert_version(model, FP16_QDQ_OPSET)
        except Exception as exc:
            raise SegdeployError(
                f"{int8}: cannot raise the graph to opset {FP16_QDQ_OPSET} ({str(exc).splitlines()[0]})"
            ) from None
    converted, kept = fp16_model(model, int8)
    with atomic_path(target) as tmp:
        onnx.save(converted, str(tmp))
        onnx.checker.check_model(str(tmp))
    return kept
