#!/usr/bin/env bash
# CPU latency of PyTorch eager FP32, ONNX Runtime FP32 and ONNX Runtime INT8 (Q/DQ), interleaved,
# for the exports made by benchmarks/cwfid_precision.sh. Usage: benchmarks/bench_cpu.sh RECIPE
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-unet-cwfid}
dir=exports/$recipe
mkdir -p benchmarks/results
segdeploy bench "$dir/model.pt" "$dir/model.onnx" "$dir/model.fp16.onnx" "$dir/model.int8.onnx" \
  --shape 256x320 --shape 480x640 --batch 1 --iterations 30 --warmup 5 --torch-variant eager \
  --json "benchmarks/results/$recipe-bench.json" --plot "benchmarks/results/$recipe-bench.png"
