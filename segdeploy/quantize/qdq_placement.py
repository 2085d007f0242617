"""A post-pass on ONNX Runtime's Q/DQ graph that leaves the placement TensorRT fuses (as NVIDIA ModelOpt does):

- Residual Adds keep Q/DQ on one input only, the residual (skip) branch: the other input, the deeper one,
  preferably a weighted op's output, goes in float so TensorRT fuses it into that conv as its epilogue.
- The quantized inputs of a Concat share one scale, the largest (it covers every input's range); a Concat
  with some float inputs gets float on all of them, and the Q after it (if any) sets one scale for all.
- x * HardSigmoid(x) (HardSwish, decomposed) takes x in float: no Q/DQ between a conv and its activation.
- A Q/DQ whose input comes from an op that commutes with quantization (MaxPool, Concat, nearest Resize:
  they pick, copy or stack values, so Q(op(x)) = op(Q(x)) at one scale) is repeated, same scale, on that
  op's data inputs: DQ -> op -> Q with equal scales is what TensorRT fuses into an INT8 op, and the
  producer upstream (a conv and its ReLU) then writes INT8. Repeated until no such op is left upstream.
- A tensor read by several Qs gets one scale, the largest, shared with every Q/DQ that had one of them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .qdq_report import WEIGHTED_OP_TYPES, QdqGraph, commutes


def _depths(graph: onnx.GraphProto) -> dict[str, int]:
    """Longest path in nodes from the graph inputs to each tensor (nodes are in topological order)."""
    depth: dict[str, int] = {}
    for node in graph.node:
        level = 1 + max((depth.get(name, 0) for name in node.input), default=0)
        depth.update((out, level) for out in node.output)
    return depth


def _weighted_output(view: QdqGraph, name: str) -> bool:
    source = view.producer.get(name)
    return source is not None and source.op_type in WEIGHTED_OP_TYPES


def _one_quantized_input_per_add(model: onnx.ModelProto) -> None:
    view, depth = QdqGraph(model), _depths(model.graph)
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        pairs = [view.pair(name) for name in node.input]
        if None in pairs:
            continue
        sources = [pair[0].input[0] for pair in pairs if pair is not None]
        ranks = [(_weighted_output(view, source), depth.get(source, 0)) for source in sources]
        main = 0 if ranks[0] > ranks[1] else 1  # the conv branch; the other is the residual
        node.input[main] = sources[main]


def _shared_concat_scales(model: onnx.ModelProto) -> None:
    view = QdqGraph(model)
    root: dict[str, str] = {}  # union-find over the DQ outputs that must share a scale

    def find(name: str) -> str:
        while root.setdefault(name, name) != name:
            name = root[name]
        return name

    for node in model.graph.node:
        if node.op_type != "Concat":
            continue
        pairs = [view.pair(name) for name in node.input]
        if all(pair is None for pair in pairs):
            continue
        if any(pair is None for pair in pairs):
            for index, pair in enumerate(pairs):
                if pair is not None:
                    node.input[index] = pair[0].input[0]
            continue
        for name in node.input[1:]:
            root[find(name)] = find(node.input[0])
    groups: dict[str, list[str]] = {}
    for name in root:
        groups.setdefault(find(name), []).append(name)
    for group, members in groups.items():
        pairs = [view.pair(name) for name in members]
        common = max(view.scale(pair[1]) for pair in pairs if pair is not None)
        shared = f"{group}_shared_scale"
        model.graph.initializer.append(numpy_helper.from_array(np.array(common, np.float32), shared))
        for pair in pairs:
            for qdq in pair or ():
                qdq.input[1] = shared


def _through_commuting_ops(model: onnx.ModelProto) -> None:
    graph = model.graph
    moved = True
    while moved:
        moved = False
        view = QdqGraph(model)
        outputs = {value.name for value in graph.output}  # a graph output keeps its values
        for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
            source = view.producer.get(q.input[0])
            if source is None or not commutes(source) or q.input[0] in outputs or len(view.consumers[q.input[0]]) != 1:
                continue
            count = len(source.input) if source.op_type == "Concat" else 1  # Resize/MaxPool: the data input only
            inputs = list(source.input[:count])
            if any(name in view.initializers or view.pair(name) is not None for name in inputs):
                continue
            added = []
            for index, name in enumerate(inputs):
                edge = f"{source.name or source.output[0]}_in{index}"
                added += [
                    onnx.helper.make_node("QuantizeLinear", [name, *q.input[1:]], [f"{edge}_q"], name=f"{edge}_q"),
                    onnx.helper.make_node(
                        "DequantizeLinear", [f"{edge}_q", *q.input[1:]], [f"{edge}_dq"], name=f"{edge}_dq"
                    ),
                ]
                source.input[index] = f"{edge}_dq"
            nodes = list(graph.node)
            at = nodes.index(source)
            nodes[at:at] = added
            del graph.node[:]
            graph.node.extend(nodes)
            moved = True
            break


def _one_scale_per_tensor(model: onnx.ModelProto) -> None:
    """A tensor quantized by several Qs (U-Net's encoder ReLU, read by its MaxPool and by a skip Concat, once
    both got their Q/DQ repeated upstream) gets one scale, the largest of them, and so do the Q/DQ pairs that
    share a scale with those: TensorRT gives a conv one INT8 output scale, and the ops Q/DQ commutes with
    need equal scales on both sides."""
    graph = model.graph
    root: dict[str, str] = {}

    def find(name: str) -> str:
        while root.setdefault(name, name) != name:
            name = root[name]
        return name

    by_tensor: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            by_tensor.setdefault(node.input[0], []).append(node.input[1])
    for scales in by_tensor.values():
        for name in scales[1:]:
            root[find(name)] = find(scales[0])
    groups: dict[str, set[str]] = {}
    for name in list(root):
        groups.setdefault(find(name), set()).add(name)
    initializers = {t.name: t for t in graph.initializer}
    for group, members in groups.items():
        if len(members) < 2:
            continue
        common = max(float(numpy_helper.to_array(initializers[m]).max()) for m in members)
        dtype = numpy_helper.to_array(initializers[group]).dtype
        shared = f"{group}_tensor_scale"
        graph.initializer.append(numpy_helper.from_array(np.array(common, dtype), shared))
        for node in graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in members:
                node.input[1] = shared


def _float_inside_hardswish(model: onnx.ModelProto) -> None:
    """x * HardSigmoid(x) is HardSwish as ONNX Runtime's pre-processing decomposes it: quantizing the
    Mul's inputs put a Q/DQ on x, between a conv and its activation, where TensorRT fuses neither. x goes
    in float to both; the product is quantized where its readers need it."""
    view = QdqGraph(model)

    def unquantized(name: str) -> str:
        pair = view.pair(name)
        return name if pair is None else pair[0].input[0]

    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        for index in (0, 1):
            x, gate_output = unquantized(node.input[index]), unquantized(node.input[1 - index])
            gate = view.producer.get(gate_output)
            if gate is not None and gate.op_type == "HardSigmoid" and unquantized(gate.input[0]) == x:
                node.input[index], node.input[1 - index], gate.input[0] = x, gate_output, x
                break


def _drop_unused(model: onnx.ModelProto) -> None:
    """Q/DQ nodes nothing reads any more, then initializers nothing reads."""
    graph = model.graph
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [
            n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.output[0] not in read
        ]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input} | outputs
    for tensor in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(tensor)


def place_for_tensorrt(model: onnx.ModelProto) -> None:
    """Rewrite `model` in place: one quantized input per residual Add, one scale per quantized Concat, Q/DQ
    repeated through the ops that commute with it."""
    _one_quantized_input_per_add(model)
    _shared_concat_scales(model)
    _float_inside_hardswish(model)
    _drop_unused(model)
    _through_commuting_ops(model)
    _one_scale_per_tensor(model)
    _drop_unused(model)
