"""Which quantized op type makes OpenVINO's INT8 of a Q/DQ graph disagree with FP32: per op type, the
graph with the Q/DQ pairs feeding that type bypassed, run by OpenVINO on the first 8 images of a split,
and its class-map agreement with the FP32 graph on ONNX Runtime. With --skips, per residual Add whose skip
is a conv's quantized output (what quantize/int8_cpu.float_conv_skips rewires), the graph with that one
skip in float instead.

    python benchmarks/openvino_int8_probe.py EXPORT_DIR --data recipes/data/cwfid.yaml --out /tmp/probe \
        [--graph model.int8-cpu.onnx] [--skips]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.backends.openvino_backend import OpenVINOBackend
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.spec import load_dataset_spec
from segdeploy.evaluate import batches
from segdeploy.quantize.int8_cpu import float_conv_skips

OP_TYPES = (
    ("Conv",),
    ("Add",),
    ("Mul",),
    ("GlobalAveragePool", "AveragePool", "ReduceMean"),
    ("Concat",),
    ("MaxPool",),
)


def bypass(source: Path, op_types: tuple[str, ...], target: Path) -> int:
    """Write `source` with every Q -> DQ pair that feeds an op of `op_types` cut out; the pairs cut."""
    model = onnx.load(str(source))
    producers = {output: node for node in model.graph.node for output in node.output}
    cut = 0
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        for index, name in enumerate(node.input):
            dq = producers.get(name)
            q = producers.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[index] = q.input[0]
                cut += 1
    onnx.save(model, str(target))
    return cut


def one_float_skip(source: Path, add_name: str, target: Path) -> None:
    """Write `source` with only `add_name`'s conv skip in float: float_conv_skips rewires every such Add, and
    the others are given back the DequantizeLinear that their conv's other readers still read."""
    model = onnx.load(str(source))
    rewired = float_conv_skips(model)
    producers = {output: node for node in model.graph.node for output in node.output}
    dequantized = {}
    for node in model.graph.node:
        source_q = producers.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if source_q is not None and source_q.op_type == "QuantizeLinear":
            dequantized[source_q.input[0]] = node.output[0]
    for add in (n for n in model.graph.node if n.name in rewired and n.name != add_name):
        for index, name in enumerate(add.input):
            if name in dequantized and producers[name].op_type == "Conv":
                add.input[index] = dequantized[name]
    onnx.save(model, str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="an export folder with model.onnx and model.int8.onnx")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", type=Path, required=True, help="folder for the bypassed graphs")
    parser.add_argument("--graph", default="model.int8.onnx", help="the Q/DQ graph of EXPORT_DIR to probe")
    parser.add_argument("--skips", action="store_true", help="probe residual Adds' conv skips one at a time")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames = next(iter(batches(SegmentationSplit(load_dataset_spec(args.data), args.split), 8)))[0]
    reference = OnnxRuntimeBackend(args.export / "model.onnx").run(frames).argmax(1)

    def agreement(graph: Path) -> float:
        backend = OpenVINOBackend(graph)
        try:
            return float((backend.run(frames).argmax(1) == reference).mean())
        finally:
            backend.close()

    int8 = args.export / args.graph
    print(f"OpenVINO, {int8.name} as exported: agreement with FP32 {agreement(int8):.4%}")
    if args.skips:
        for add_name in float_conv_skips(onnx.load(str(int8))):
            target = args.out / f"float-skip-{len(list(args.out.iterdir()))}.onnx"
            one_float_skip(int8, add_name, target)
            print(f"only {add_name}'s conv skip in float: agreement {agreement(target):.4%}")
        return
    for op_types in OP_TYPES:
        target = args.out / f"bypass-{'-'.join(op_types)}.onnx"
        cut = bypass(int8, op_types, target)
        if cut:
            print(f"Q/DQ into {'/'.join(op_types)} cut ({cut} pairs): agreement {agreement(target):.4%}")


if __name__ == "__main__":
    main()
