"""Issue 22 investigation: the library's TensorRT placement (trt) beside ONNX Runtime's own QDQ placements
(s8s8, s8s8sym = symmetric int8 activations, u8s8, u8s8pt = per-tensor weights) of one FP32 export, 8 frames of
calibration/cwfid, minmax. Usage: python benchmarks/ort_int8_variants_make.py EXPORT_DIR trt,s8s8,u8s8,..."""
import sys, time, contextlib, io, json
from pathlib import Path
import onnx
from segdeploy.quantize.int8 import FrameFeed, calibration_reader, prepare, quantize
from segdeploy.data.calibration import load_calibration_set
from segdeploy.artifacts.metadata import read_onnx_metadata
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationMethod

d = Path(sys.argv[1]); variants = sys.argv[2].split(",")
fp32 = d / "model.onnx"
m = onnx.load(str(fp32), load_external_data=False)
meta, _ = read_onnx_metadata({p.key: p.value for p in m.metadata_props}, fp32)
calib = load_calibration_set(Path("calibration/cwfid"))
prepared = d / "prepared.onnx"
if not prepared.exists():
    prepare(fp32, prepared)
name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
feed = FrameFeed(calib, meta, name)
feed.frames = feed.frames[:8]
for v in variants:
    t = time.time()
    out = d / f"{v}.onnx"
    if v == "trt":
        quantize(prepared, out, feed, "minmax", d / "cache.json")
    else:
        act = QuantType.QUInt8 if v.startswith("u8") else QuantType.QInt8
        fmt = QuantFormat.QOperator if "qop" in v else QuantFormat.QDQ
        extra = {"CalibStridedMinMax": 4}
        if "sym" in v: extra["ActivationSymmetric"] = True
        ops = None
        if "conv" in v: ops = ["Conv", "ConvTranspose", "Gemm", "MatMul"]
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(str(prepared), str(out), calibration_reader(feed), quant_format=fmt, op_types_to_quantize=ops,
                            per_channel="pt" not in v, reduce_range=False, activation_type=act,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, extra_options=extra)
    print(v, f"{time.time()-t:.1f}s", flush=True)
