"""Which layers an FP16 builder-flag build keeps in FP32: the TensorRT side of quantize/fp16.py's
block list. Pure logic over layer facts, tested without TensorRT.

- A typed FP16 graph (model.fp16.onnx built with flags, TensorRT 8.x or DLA) carries the block list as
  FP32 islands between Casts: every layer whose float output tensors are all FLOAT is pinned.
- An FP32 graph built with --fp16/--int8 has no islands: layers of the kinds the block list names are
  pinned (reductions over all pixels, softmax, argmax/top-k), and Resize by the graph writer's rule:
  an interpolating Resize with no weighted layer after it (the logits' upsampling); feature Resizes
  feed a convolution and nearest ones only copy values, so they run FP16.
With builder flags these pins are hints unless OBEY_PRECISION_CONSTRAINTS is set (precision_table.py adds it
to every flag set that enables FP16). Only float outputs are pinned: TensorRT refuses to set the type of
TopK's INT32 index output and of shape outputs (NvInfer.h, ILayer::setOutputType).
"""

from __future__ import annotations

from dataclasses import dataclass

# TensorRT LayerType names for FP16_BLOCK_LIST's ops (ReduceMean/ReduceSum/GlobalAveragePool,
# Softmax/LogSoftmax, ArgMax/TopK), as TensorRT's ONNX parser makes them; RESIZE is decided per layer.
BLOCKED_LAYER_TYPES = frozenset({"REDUCE", "SOFTMAX", "TOPK"})
# quantize/qdq_report.py's WEIGHTED_OP_TYPES (Conv, ConvTranspose, Gemm, MatMul) as TensorRT layers
WEIGHTED_LAYER_TYPES = frozenset({"CONVOLUTION", "DECONVOLUTION", "MATRIX_MULTIPLY", "FULLY_CONNECTED"})
FLOAT_TYPES = frozenset({"FLOAT", "HALF", "BF16"})


@dataclass(frozen=True)
class LayerFacts:
    type: str  # tensorrt.LayerType name
    outputs: tuple[str, ...]  # tensorrt.DataType names of its output tensors (ITensor.dtype)
    inputs: tuple[str, ...] = ()  # names of the tensors it reads
    output_names: tuple[str, ...] = ()
    interpolating: bool = False  # a RESIZE layer whose mode is not NEAREST

    def float_outputs(self) -> list[int]:
        """The outputs a pin may set to FLOAT."""
        return [j for j, dtype in enumerate(self.outputs) if dtype in FLOAT_TYPES]


def _feeds_weighted(layers: list[LayerFacts]) -> set[str]:
    """Tensors from which a weighted layer is reachable (layers are in topological order, as the parser adds them)."""
    feeding: set[str] = set()
    for layer in reversed(layers):
        if layer.type in WEIGHTED_LAYER_TYPES or feeding & set(layer.output_names):
            feeding.update(layer.inputs)
    return feeding


def fp32_layers(layers: list[LayerFacts], typed_graph: bool) -> list[int]:
    """Indices of the layers to pin to FP32 (precision and float output types)."""
    if typed_graph:
        return [
            i
            for i, layer in enumerate(layers)
            if layer.float_outputs() and all(layer.outputs[j] == "FLOAT" for j in layer.float_outputs())
        ]
    feeding = _feeds_weighted(layers)
    return [
        i
        for i, layer in enumerate(layers)
        if layer.type in BLOCKED_LAYER_TYPES
        or (layer.type == "RESIZE" and layer.interpolating and not feeding & set(layer.output_names))
    ]
