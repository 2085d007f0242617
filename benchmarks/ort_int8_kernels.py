"""What ONNX Runtime's CPU provider fuses in each graph of an export folder (quantize.int8_cpu.onnxruntime_kernels),
as JSON by file name: quantized convs, convs left in float, Q/DQ nodes left to run on their own.
Usage: python benchmarks/ort_int8_kernels.py EXPORT_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segdeploy.quantize.int8_cpu import onnxruntime_kernels

folder = Path(sys.argv[1])
graphs = ("model.onnx", "model.int8.onnx", "model.int8-cpu.onnx")  # the FP16-remainder twin is for TensorRT
print(json.dumps({name: onnxruntime_kernels(folder / name) for name in graphs if (folder / name).is_file()}, indent=2))
