"""RESULTS.md rows for INT8 exports: accuracy from a `segdeploy parity --json` file, structure from
qdq_report/qdq_violations (main's code, so older exports get the same measure).

Usage: python benchmarks/int8_table.py "LABEL=EXPORT_DIR:PARITY_JSON" ..."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx

from segdeploy.artifacts.manifest import opset_of
from segdeploy.artifacts.metadata import read_onnx_metadata
from segdeploy.quantize.int8 import qdq_violations
from segdeploy.quantize.pipeline import opt_shape_report
from segdeploy.precision_table import INT8


def rows(label: str, export: Path, parity: Path) -> tuple[list[str], list[str]]:
    found = {Path(r["artifact"]).name: r for r in json.loads(parity.read_text())["rows"] if r["backend"] == "onnxruntime"}
    accuracy, structure = [], []
    for name in (INT8.graph_file, INT8.strongly_typed_file):
        path = export / name
        if not path.exists():
            continue
        row = found[name]
        model = onnx.load(str(path), load_external_data=False)
        meta = read_onnx_metadata({p.key: p.value for p in model.metadata_props}, path)[0]
        opset = opset_of(model)
        report = opt_shape_report(path, meta)
        accuracy.append(
            f"| {label} | {name} | {row['miou']:.5f} | {-row['miou_delta']:+.5f} | {100 * row['pixel_agreement']:.4f}% "
            f"| {row['max_abs_logit_diff']:.2f} | {row['iou'].get('crop', float('nan')):.4f} | {opset} |"
        )
        structure.append(
            f"| {label} | {name} | {report.weighted_ops_fully_quantized}/{report.weighted_ops} "
            f"| {report.weighted_outputs_with_qdq} | {report.adds_one_quantized} / {report.adds_two_quantized} "
            f"| {report.concats_unequal_scales} | {report.float_activation_bytes / 2**20:.1f} MiB | {report.casts} "
            f"| {len(qdq_violations(path))} |"
        )
    return accuracy, structure


if __name__ == "__main__":
    tables: tuple[list[str], list[str]] = ([], [])
    for arg in sys.argv[1:]:
        label, paths = arg.split("=", 1)
        export, parity = paths.split(":")
        accuracy, structure = rows(label, Path(export), Path(parity))
        tables[0].extend(accuracy)
        tables[1].extend(structure)
    print("\n".join(tables[0]) + "\n\n" + "\n".join(tables[1]))
