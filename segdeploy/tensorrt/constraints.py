"""Which layers an FP16 builder-flag build keeps in FP32: the TensorRT side of precision/fp16.py's
block list. Pure logic over layer facts, tested without TensorRT.

- A typed FP16 graph (model.fp16.onnx built with flags, TensorRT 8.x or DLA) carries the block list as
  FP32 islands between Casts: every layer whose outputs are all FLOAT is pinned.
- An FP32 graph built with --fp16/--int8 has no islands: layers of the kinds the block list names are
  pinned (resize of logits, reductions over all pixels, softmax, argmax/top-k).
With builder flags these pins are hints unless OBEY_PRECISION_CONSTRAINTS is set (precision_table.py adds it
to every flag set that enables FP16).
"""

from __future__ import annotations

from dataclasses import dataclass

# TensorRT LayerType names for FP16_BLOCK_LIST's ops (Resize, ReduceMean/ReduceSum/GlobalAveragePool,
# Softmax/LogSoftmax, ArgMax/TopK), as TensorRT's ONNX parser makes them.
BLOCKED_LAYER_TYPES = frozenset({"RESIZE", "REDUCE", "SOFTMAX", "TOPK"})


@dataclass(frozen=True)
class LayerFacts:
    type: str  # tensorrt.LayerType name
    outputs: tuple[str, ...]  # tensorrt.DataType names of its outputs


def fp32_layers(layers: list[LayerFacts], typed_graph: bool) -> list[int]:
    """Indices of the layers to pin to FP32 (precision and output types)."""
    if typed_graph:
        return [i for i, layer in enumerate(layers) if layer.outputs and set(layer.outputs) == {"FLOAT"}]
    return [i for i, layer in enumerate(layers) if layer.type in BLOCKED_LAYER_TYPES]
