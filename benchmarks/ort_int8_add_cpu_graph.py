"""Add model.int8-cpu.onnx to an export folder written by `export --int8` before that graph existed, with the
function `export --int8` calls (quantize.pipeline.write_int8_for_cpu: same calibration set, method and accuracy
guard), and record it in the folder's manifest. Used on a copy of a shared export, to skip re-calibrating its
TensorRT graphs. Usage: python benchmarks/ort_int8_add_cpu_graph.py EXPORT_DIR CALIBRATION_DIR [METHOD]"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from segdeploy.artifacts.manifest import read_manifest, write_manifest
from segdeploy.artifacts.metadata import read_onnx_metadata
from segdeploy.quantize.pipeline import PrecisionOptions, check_precision_inputs, write_int8_for_cpu

folder, calibration = Path(sys.argv[1]), Path(sys.argv[2])
fp32 = folder / "model.onnx"
model = onnx.load(str(fp32), load_external_data=False)
meta, _ = read_onnx_metadata({p.key: p.value for p in model.metadata_props}, fp32)
options = PrecisionOptions(calibration=calibration, method=sys.argv[3] if len(sys.argv) > 3 else "entropy")
inputs = check_precision_inputs(meta, options)
assert inputs is not None
max_drop = meta.recipe.tolerance.int8.miou_delta
target, entry, result = write_int8_for_cpu(fp32, meta, options, inputs, max_drop, print)
manifest = read_manifest(folder)
manifest["artifacts"][target.name] = entry
write_manifest(folder, manifest)
print(f"{target}: val mIoU {result.int8_miou:.5f}, drop {result.drop:+.5f}, gate {max_drop}")
