"""The structure of a Q/DQ graph, as TensorRT's explicit quantization would fuse it.

Counted: weighted ops (Conv/ConvTranspose/Gemm/MatMul) with both data and weight quantized, weighted ops
whose output is quantized for anything but another weighted op, a residual Add or an op Q/DQ commutes
with, MaxPool, Concat, nearest Resize (output Q/DQ: it rounds twice and can block fusion; a Q/DQ that
feeds the next conv, the residual input or such an op on its way to them is the fused form),
Adds with one or two quantized inputs (TensorRT fuses conv + add when only the residual input is),
quantized Concats whose inputs do not share one scale, the bytes of float activations that no Q/DQ pair
touches at a given input shape (what TensorRT writes in float: tensors read only by a pointwise epilogue
it fuses into the producer, an activation, an Add or HardSwish's x * HardSigmoid(x), are not counted), and Casts.
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


def commutes(node: onnx.NodeProto) -> bool:
    """An op a Q/DQ passes through unchanged: it picks, copies or stacks values (MaxPool without indices,
    Concat, nearest Resize), so Q(op(x)) = op(Q(x)) at one scale; qdq_placement repeats the Q/DQ on its
    inputs and TensorRT runs it INT8."""
    if node.op_type == "Resize":
        return resize_mode(node) == b"nearest"
    return node.op_type == "Concat" or (node.op_type == "MaxPool" and len(node.output) == 1)


def resize_mode(node: onnx.NodeProto) -> bytes:
    """A Resize/Upsample node's interpolation mode (ONNX's default: nearest)."""
    return next((a.s for a in node.attribute if a.name == "mode"), b"nearest")


class QdqGraph:
    """Who produces and who reads each tensor of a Q/DQ graph, and what its Q/DQ pairs say."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.initializers = {t.name: t for t in model.graph.initializer}
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def pair(self, name: str) -> tuple[onnx.NodeProto, onnx.NodeProto] | None:
        """The Q -> DQ pair of an activation that produces `name`, or None."""
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = self.producer.get(dq.input[0])
        return None if q is None or q.op_type != "QuantizeLinear" else (q, dq)

    def scale(self, node: onnx.NodeProto) -> float:
        """The largest scale a Q or DQ node uses."""
        return float(numpy_helper.to_array(self.initializers[node.input[1]]).max())

    def dequantized(self, name: str) -> bool:
        source = self.producer.get(name)
        return source is not None and source.op_type == "DequantizeLinear"

    def scale_of(self, name: str) -> tuple[float, ...] | None:
        source = self.producer.get(name)
        if source is None or source.op_type != "DequantizeLinear" or source.input[1] not in self.initializers:
            return None
        return tuple(numpy_helper.to_array(self.initializers[source.input[1]]).ravel().tolist())

    def quantized_after(self, name: str) -> bool:
        return any(c.op_type == "QuantizeLinear" for c in self.consumers.get(name, []))

    def fused(self, name: str) -> bool:
        """Read only by pointwise epilogues TensorRT fuses into the producer: activations, Adds, and the Mul
        of x * HardSigmoid(x) (HardSwish as ONNX Runtime's pre-processing decomposes it)."""
        readers = self.consumers.get(name, [])
        return bool(readers) and all(r.op_type in EPILOGUE_OP_TYPES or self._hardswish(r) for r in readers)

    def _hardswish(self, node: onnx.NodeProto) -> bool:
        """A Mul of x and HardSigmoid(x)."""
        if node.op_type != "Mul" or len(node.input) != 2:
            return False
        gates = [self.producer.get(name) for name in node.input]
        return any(
            g is not None and g.op_type == "HardSigmoid" and g.input[0] == node.input[1 - i]
            for i, g in enumerate(gates)
        )

    def output_qdq(self, name: str) -> bool:
        """`name` is quantized for a node that does not fuse it (_fusing_reader)."""
        dqs = [
            d
            for q in self.consumers.get(name, [])
            if q.op_type == "QuantizeLinear"
            for d in self.consumers.get(q.output[0], [])
        ]
        readers = [r for d in dqs for r in self.consumers.get(d.output[0], [])]
        return not all(self._fusing_reader(r) for r in readers)

    def _fusing_reader(self, node: onnx.NodeProto) -> bool:
        """A weighted op, an Add, an op Q/DQ commutes with whose output is quantized again, or a Shape (it
        reads no values: LR-ASPP's head sizes a Resize by the low-level features)."""
        if commutes(node):
            return self.quantized_after(node.output[0])
        return node.op_type in (*WEIGHTED_OP_TYPES, "Add", "Shape")

    def scales_per_tensor(self) -> dict[str, int]:
        """How many different scales the Qs reading each tensor use."""
        scales: dict[str, set[tuple[float, ...]]] = {}
        for q in self.of_type("QuantizeLinear"):
            if q.input[1] in self.initializers:
                value = tuple(numpy_helper.to_array(self.initializers[q.input[1]]).ravel().tolist())
                scales.setdefault(q.input[0], set()).add(value)
        return {name: len(found) for name, found in scales.items()}

    def of_type(self, *op_types: str) -> list[onnx.NodeProto]:
        return [n for n in self.nodes if n.op_type in op_types]

    def unequal_concat(self, node: onnx.NodeProto) -> bool:
        scales = [self.scale_of(i) for i in node.input]
        return any(s is not None for s in scales) and len(set(scales)) > 1


def structure_problems(model: onnx.ModelProto) -> list[str]:
    """The placements TensorRT fuses badly, by node: output Q/DQ on weighted ops, Adds with both inputs
    quantized, quantized Concats whose inputs do not share one scale."""
    view = QdqGraph(model)
    return [
        *(
            f"{n.name}: {n.op_type} output carries Q/DQ"
            for n in view.of_type(*WEIGHTED_OP_TYPES)
            if view.output_qdq(n.output[0])
        ),
        *(
            f"{n.name}: Add with both inputs quantized"
            for n in view.of_type("Add")
            if all(map(view.dequantized, n.input))
        ),
        *(f"{n.name}: Concat inputs with unequal scales" for n in view.of_type("Concat") if view.unequal_concat(n)),
        *(f"{name}: quantized at {count} scales" for name, count in view.scales_per_tensor().items() if count > 1),
    ]


def qdq_report(path: Path, input_shape: tuple[int, ...]) -> QdqReport:
    """The structure of the Q/DQ graph at `path`, activation sizes at `input_shape` (the recipe's opt shape)."""
    model = onnx.load(str(path))
    view = QdqGraph(model)
    weighted = view.of_type(*WEIGHTED_OP_TYPES)
    adds = [sum(view.dequantized(i) for i in n.input) for n in view.of_type("Add")]
    sizes = _float_bytes(path, model, input_shape)
    outside = {
        out
        for node in view.nodes
        if node.op_type not in (*QDQ_OP_TYPES, "Constant")
        for out in node.output
        if out not in view.initializers and not view.quantized_after(out) and not view.fused(out)
    }
    return QdqReport(
        weighted_ops=len(weighted),
        weighted_ops_fully_quantized=sum(
            len(n.input) > 1 and view.dequantized(n.input[0]) and view.dequantized(n.input[1]) for n in weighted
        ),  # fmt: skip
        weighted_outputs_with_qdq=sum(view.output_qdq(n.output[0]) for n in weighted),
        adds_one_quantized=adds.count(1),
        adds_two_quantized=adds.count(2),
        concats_unequal_scales=sum(view.unequal_concat(n) for n in view.of_type("Concat")),
        float_activation_bytes=sum(sizes.get(name, 0) for name in outside),
        casts=len(view.of_type("Cast")),
        input_shape=list(input_shape),
    )
