"""FP16 in the graph: weights and activations float16, I/O types kept, sensitive ops kept in float32."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxconverter_common import float16

from ..errors import SegdeployError
from ..files import atomic_path
from .qdq_report import WEIGHTED_OP_TYPES, resize_mode

# Ops left in float32, and why:
#   Resize/Upsample of the logits, interpolating (linear, cubic) with no weighted op after them: the final
#     upsampling decides the class map at every boundary pixel, and bilinear weights in float16 shift ties.
#     Resizes of features (DeepLabv3+'s decoder, LR-ASPP's head) feed a convolution that rounds its
#     input anyway, and nearest-neighbour ones (U-Net's decoder) only copy values: those convert, so a
#     TensorRT engine does not move the decoder's largest tensors in float32.
#   ReduceMean/ReduceSum/GlobalAveragePool: ASPP's image pooling and the squeeze-excite blocks of
#     MobileNetV3 sum over all pixels, which loses precision (and can overflow) in float16.
#   Softmax/LogSoftmax/Exp/Pow/Sqrt/Div: exponentials and roots overflow float16's 65504 range.
#   ArgMax/TopK: integer outputs; comparing near-ties in float16 flips labels needlessly.
FP16_BLOCK_LIST = sorted(
    {
        *float16.DEFAULT_OP_BLOCK_LIST,
        "Resize",
        "Upsample",
        "ReduceMean",
        "ReduceSum",
        "GlobalAveragePool",
        "Softmax",
        "LogSoftmax",
        "Exp",
        "Pow",
        "Sqrt",
        "Div",
        "ArgMax",
        "TopK",
    }
)


RESIZE_OPS = ("Resize", "Upsample")


def convert_fp16(source: Path, target: Path, block_list: list[str] | None = None) -> list[str]:
    """Write a float16 copy of `source` whose inputs and outputs keep the FP32 model's types.
    Returns the op types actually kept in float32."""
    model = onnx.load(str(source))
    converted, kept = fp16_model(model, source, block_list)
    with atomic_path(target) as tmp:
        onnx.save(converted, str(tmp))
        onnx.checker.check_model(str(tmp))
    return kept


def fp16_model(
    model: onnx.ModelProto, source: Path, block_list: list[str] | None = None
) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with its float tensors in float16 except the ops of `block_list` [FP16_BLOCK_LIST], I/O types
    kept; and the op types kept in float32. Q/DQ nodes convert too: their scales become float16 (opset >= 19)."""
    blocked = FP16_BLOCK_LIST if block_list is None else block_list
    interpolating = _logit_resizes(model) if set(RESIZE_OPS) & set(blocked) else []
    ops = [op for op in blocked if op not in RESIZE_OPS]
    try:
        with warnings.catch_warnings():  # one warning per tiny weight flushed to float16's 1e-7 floor
            warnings.simplefilter("ignore", UserWarning)
            converted = float16.convert_float_to_float16(
                model, keep_io_types=True, op_block_list=ops, node_block_list=interpolating
            )
    except Exception as exc:
        raise SegdeployError(f"{source}: float16 conversion failed ({str(exc).splitlines()[0]})") from None
    _retarget_casts(converted)
    _float_resize_scales(converted)
    _restore_output_types(converted, model)
    kept = {n.op_type for n in model.graph.node if n.op_type in ops or n.name in interpolating}
    return converted, sorted(kept)


def _logit_resizes(model: onnx.ModelProto) -> list[str]:
    """Interpolating Resize/Upsample nodes with no weighted op downstream (nodes are in topological order),
    by name: unnamed ones are named here, since the converter blocks nodes by name."""
    for index, node in enumerate(model.graph.node):
        if node.op_type in RESIZE_OPS and not node.name:
            node.name = f"{node.op_type}_{index}_segdeploy"
    feeds_weighted: dict[str, bool] = {}
    for node in reversed(model.graph.node):
        weighted = node.op_type in WEIGHTED_OP_TYPES or any(feeds_weighted.get(o, False) for o in node.output)
        for name in node.input:
            feeds_weighted[name] = feeds_weighted.get(name, False) or weighted
    return [
        n.name
        for n in model.graph.node
        if n.op_type in RESIZE_OPS
        and resize_mode(n) != b"nearest"
        and not any(feeds_weighted.get(o, False) for o in n.output)
    ]


def _float_resize_scales(converted: onnx.ModelProto) -> None:
    """Resize takes its `scales` (input 2) as float32 only (the ONNX operator spec: tensor(float)), but the
    converter halves every float constant of a node it converts. It gets away with it only where the
    constant is shared with a blocked node; ModelOpt's graphs give each Resize its own copy. Back to float32."""
    scales = {n.input[2] for n in converted.graph.node if n.op_type == "Resize" and len(n.input) > 2 and n.input[2]}
    tensors = [t for t in converted.graph.initializer if t.name in scales]
    tensors += [
        a.t for n in converted.graph.node if n.op_type == "Constant" and n.output[0] in scales for a in n.attribute
        if a.name == "value"
    ]  # fmt: skip
    for tensor in tensors:
        if tensor.data_type == onnx.TensorProto.FLOAT16:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
    for value in converted.graph.value_info:
        if value.name in scales and value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT


def _retarget_casts(converted: onnx.ModelProto) -> None:
    """The converter types a float Cast's output as float16 but keeps its `to` (the uint8 frames of folded
    preprocessing are cast so): cast to float16, as the value's type and its consumers now say."""
    halves = {v.name for v in converted.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
    for node in converted.graph.node:
        if node.op_type == "Cast" and node.output[0] in halves:
            for attribute in node.attribute:
                if attribute.name == "to" and attribute.i == onnx.TensorProto.FLOAT:
                    attribute.i = onnx.TensorProto.FLOAT16


def _restore_output_types(converted: onnx.ModelProto, original: onnx.ModelProto) -> None:
    """keep_io_types misses outputs produced by a blocked (float32) op: the converter casts them back
    to float16. Turn that trailing cast into a float32 one, or add one, so callers see FP32 outputs."""
    wanted = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    producers = {out: node for node in converted.graph.node for out in node.output}
    for output in converted.graph.output:
        elem = output.type.tensor_type
        if elem.elem_type == wanted[output.name] or wanted[output.name] != onnx.TensorProto.FLOAT:
            continue
        node = producers[output.name]
        if node.op_type == "Cast":
            for attribute in node.attribute:
                if attribute.name == "to":
                    attribute.i = onnx.TensorProto.FLOAT
        else:
            inner = f"{output.name}_float16"
            node.output[list(node.output).index(output.name)] = inner
            converted.graph.node.append(
                onnx.helper.make_node("Cast", [inner], [output.name], to=onnx.TensorProto.FLOAT)
            )
        elem.elem_type = onnx.TensorProto.FLOAT


def io_types(path: Path) -> list[tuple[str, int]]:
    graph = onnx.load(str(path), load_external_data=False).graph
    return [(v.name, v.type.tensor_type.elem_type) for v in [*graph.input, *graph.output]]
