#!/usr/bin/env bash
# Issue 22, item 3: ONNX Runtime INT8 on CPU. For one trained checkpoint: export FP32 + the three INT8
# graphs (model.int8.onnx and model.int8-fp16.onnx for TensorRT, model.int8-cpu.onnx for ONNX Runtime on
# CPU), print what ONNX Runtime fuses in each, time FP32 / TensorRT-placed INT8 / CPU INT8 interleaved at
# 480x640 and measure CWFID val parity.
# Usage: benchmarks/ort_int8_cpu.sh NAME RECIPE CHECKPOINT OUT   (e.g. unet unet-cwfid runs/unet/best.pt /tmp/x)
# Figures land in benchmarks/results/ort-int8-NAME-{bench,parity,kernels}.json; RESULTS.md quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 recipe=$2 checkpoint=$3 out=$4
data=recipes/data/cwfid.yaml results=benchmarks/results
mkdir -p "$results"
segdeploy export "$recipe" --checkpoint "$checkpoint" --out "$out" --force --no-engines \
  --int8 --calib calibration/cwfid --calib-method entropy
python benchmarks/ort_int8_kernels.py "$out" > "$results/ort-int8-$name-kernels.json"
segdeploy bench "$out/model.onnx" "$out/model.int8.onnx" "$out/model.int8-cpu.onnx" --shape 480x640 \
  --iterations "${ITERATIONS:-10}" --warmup 2 --no-memory --json "$results/ort-int8-$name-bench.json" --force
segdeploy parity "$out" --data "$data" --split val --json "$results/ort-int8-$name-parity.json" --force
