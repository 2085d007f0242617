"""Speed-only INT8 graphs for an export without trained weights: the library's two quantizers (quantize.int8.quantize,
the TensorRT placement, and quantize.int8_cpu.quantize_for_cpu) on one prepared graph, 8 frames of calibration/cwfid,
minmax, no accuracy guard. Usage: python benchmarks/ort_int8_speed_graphs.py EXPORT_DIR"""
import sys
from pathlib import Path
import onnx
from segdeploy.quantize.int8 import FrameFeed, prepare, quantize
from segdeploy.quantize.int8_cpu import quantize_for_cpu
from segdeploy.data.calibration import load_calibration_set
from segdeploy.artifacts.metadata import read_onnx_metadata, stamp_metadata

d = Path(sys.argv[1]); fp32 = d / "model.onnx"
m = onnx.load(str(fp32), load_external_data=False)
meta, _ = read_onnx_metadata({p.key: p.value for p in m.metadata_props}, fp32)
prepared = d / "prepared.onnx"
prepare(fp32, prepared)
feed = FrameFeed(load_calibration_set(Path("calibration/cwfid")), meta, onnx.load(str(prepared), load_external_data=False).graph.input[0].name)
feed.frames = feed.frames[:8]
quantize(prepared, d / "model.int8.onnx", feed, "minmax", d / "ranges.json")
quantize_for_cpu(prepared, d / "model.int8-cpu.onnx", feed, "minmax", [])
for name in ("model.int8.onnx", "model.int8-cpu.onnx"):
    stamp_metadata(d / name, meta, "int8")
print("done", d)
