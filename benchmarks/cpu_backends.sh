#!/usr/bin/env bash
# Issue 22's closing table: for each CWFID checkpoint, export FP32/FP16 and the three INT8 graphs, parity on
# CWFID val with ONNX Runtime, OpenVINO and OpenVINO BF16, then one interleaved bench at 480x640 of FP32,
# the TensorRT INT8 graph and the CPU INT8 graph on the same three backends.
# Usage: benchmarks/cpu_backends.sh RUNS OUT   (RUNS/{unet,deeplabv3plus,lraspp}/best.pt; JSON into benchmarks/results)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$1 out=$2 results=benchmarks/results
backends=(--backend onnxruntime --backend openvino)
# openvino:bf16 only where the CPU computes bf16 natively (elsewhere the backend refuses it)
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then backends+=(--backend openvino:bf16); fi
for m in unet deeplabv3plus lraspp; do
  segdeploy export "$m-cwfid" --checkpoint "$runs/$m/best.pt" --out "$out/$m" --force --no-engines --fp16 \
    --int8 --calib calibration/cwfid --calib-method entropy
  segdeploy parity "$out/$m" --data recipes/data/cwfid.yaml --split val "${backends[@]}" \
    --json "$results/cpu-backends-$m-parity.json" --force || true   # exit 1 when a row breaks its gate
  segdeploy bench "$out/$m/model.onnx" "$out/$m/model.int8.onnx" "$out/$m/model.int8-cpu.onnx" --shape 480x640 \
    "${backends[@]}" --threads 2 --iterations 8 --warmup 2 --no-memory --json "$results/cpu-backends-$m-bench.json" --force
done
