"""The structure of a Q/DQ graph, as TensorRT's explicit quantization would fuse it.

Counted: weighted ops (Conv/ConvTranspose/Gemm/MatMul) with both data and weight quantized, weighted ops
whose output is quantized for anything but another weighted op or a residual Add (output Q/DQ: it rounds
twice and can block fusion; a Q/DQ that feeds the next conv or the residual input is the fused form),
Adds with one or two quantized inputs (TensorRT fuses conv + add when only the residual input is),
quantized Concats whose inputs do not share one scale, the bytes of float activations that no Q/DQ pair
touches at a given input shape (what TensorRT writes in float: tensors read only by a pointwise epilogue
it fuses into the producer, an activation or Add, are not counted), and Casts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import SegdeployError

WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")
QDQ_OP_TYPES = ("QuantizeLinear", "DequantizeLinear")
EPILOGUE_OP_TYPES = ("Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Add")


@dataclass(frozen=True)
class QdqReport:
    weighted_ops: int
    weighted_ops_fully_quantized: int  # data and weight inputs both come from a DequantizeLinear
    weighted_outputs_with_qdq: int  # the output's Q/DQ is read by a node other than a weighted op or an Add
    adds_one_quantized: int
    adds_two_quantized: int
    concats_unequal_scales: int  # some input quantized, the inputs' scales not all the same
    float_activation_bytes: int  # float node outputs at `input_shape`: not Q/DQ, not quantized, not fused away
    casts: int
    input_shape: list[int]

    @property
    def fully_quantized_share(self) -> float:
        return self.weighted_ops_fully_quantized / self.weighted_ops if self.weighted_ops else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weighted_ops_fully_quantized_share": self.fully_quantized_share}

    def lines(self) -> list[str]:
        """The report in a few lines, for the console."""
        return [
            f"Q/DQ: {self.weighted_ops_fully_quantized}/{self.weighted_ops} weighted ops with both inputs quantized "
            f"({self.fully_quantized_share:.0%}), {self.weighted_outputs_with_qdq} with Q/DQ on their output",
            f"Q/DQ: Adds with one quantized input {self.adds_one_quantized}, with two {self.adds_two_quantized}; "
            f"Concats with unequal input scales {self.concats_unequal_scales}; Casts {self.casts}",
            f"Q/DQ: {self.float_activation_bytes / 2**20:.1f} MiB of float activations outside Q/DQ at "
            f"{'x'.join(map(str, self.input_shape))}",
        ]


def _float_bytes(path: Path, model: onnx.ModelProto, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Bytes of every float value the graph computes, by name, with the first graph input at `input_shape`."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph_input = fixed.graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        raise SegdeployError(f"{path}: input {graph_input.name} has {len(dims)} dimensions, not {len(input_shape)}")
    for dim, size in zip(dims, input_shape):
        dim.Clear()
        dim.dim_value = size
    inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    sizes = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        tensor = value.type.tensor_type
        if tensor.elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            continue
        shape = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim]
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
        sizes[value.name] = int(np.prod(shape, dtype=np.int64)) * itemsize
    return sizes


def qdq_report(path: Path, input_shape: tuple[int, ...]) -> QdqReport:
    """The structure of the Q/DQ graph at `path`, activation sizes at `input_shape` (the recipe's opt shape)."""
    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    initializers = {t.name: t for t in model.graph.initializer}
    producer = {out: node for node in nodes for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def dequantized(name: str) -> bool:
        source = producer.get(name)
        return source is not None and source.op_type == "DequantizeLinear"

    def scale_of(name: str) -> tuple[float, ...] | None:
        source = producer.get(name)
        if source is None or source.op_type != "DequantizeLinear" or source.input[1] not in initializers:
            return None
        return tuple(numpy_helper.to_array(initializers[source.input[1]]).ravel().tolist())

    def quantized_after(name: str) -> bool:
        return any(c.op_type == "QuantizeLinear" for c in consumers.get(name, []))

    def fused(name: str) -> bool:
        readers = consumers.get(name, [])
        return bool(readers) and all(r.op_type in EPILOGUE_OP_TYPES for r in readers)

    def output_qdq(name: str) -> bool:
        """`name` is quantized for a node that is neither a weighted op nor an Add."""
        dqs = [
            d for q in consumers.get(name, []) if q.op_type == "QuantizeLinear" for d in consumers.get(q.output[0], [])
        ]
        readers = [r for d in dqs for r in consumers.get(d.output[0], [])]
        return any(r.op_type not in (*WEIGHTED_OP_TYPES, "Add") for r in readers)

    weighted = [n for n in nodes if n.op_type in WEIGHTED_OP_TYPES]
    adds = [sum(dequantized(i) for i in n.input) for n in nodes if n.op_type == "Add"]
    concats = [[scale_of(i) for i in n.input] for n in nodes if n.op_type == "Concat"]
    sizes = _float_bytes(path, model, input_shape)
    outside = {
        out
        for node in nodes
        if node.op_type not in (*QDQ_OP_TYPES, "Constant")
        for out in node.output
        if out not in initializers and not quantized_after(out) and not fused(out)
    }
    return QdqReport(
        weighted_ops=len(weighted),
        weighted_ops_fully_quantized=sum(
            len(n.input) > 1 and dequantized(n.input[0]) and dequantized(n.input[1]) for n in weighted
        ),  # fmt: skip
        weighted_outputs_with_qdq=sum(output_qdq(n.output[0]) for n in weighted),
        adds_one_quantized=adds.count(1),
        adds_two_quantized=adds.count(2),
        concats_unequal_scales=sum(any(s is not None for s in c) and len(set(c)) > 1 for c in concats),
        float_activation_bytes=sum(sizes.get(name, 0) for name in outside),
        casts=sum(n.op_type == "Cast" for n in nodes),
        input_shape=list(input_shape),
    )
