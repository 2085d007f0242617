#!/usr/bin/env bash
# The GPU check, for a machine with one NVIDIA GPU, torch and cuda-bindings, no TensorRT and no package
# index needed; under 8 minutes on one H100/H200 (the step limits add up to 465 s).
# Usage: benchmarks/gpu_check.sh OUT_DIR   (figures and one log per step go to OUT_DIR)
#  0. the wheels benchmarks/gpu_wheels.sh prepared in .whl/ (segmentation-models-pytorch and what it
#     imports), installed into /tmp/site without an index, when .whl/ is there;
#  1. the CUDA-layer contract suite on the real GPU (tests/test_cuda_contract.py, marker gpu, without the
#     test suite's conftest), which includes graph capture and replay of torch kernels on a segdeploy stream;
#  2. a CUDA session left open at exit: no context may be current after the finalisers ran;
#  3. PyTorch CUDA parity and latency (FP32, FP16 autocast, channels_last, CUDA graphs) for U-Net
#     and DeepLabv3+, freshly initialised: OUT_DIR/gpu_check.md and gpu_check.json.
# Every step runs even when one before failed; the exit status is 1 when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR" >&2
  exit 2
fi
OUT=$1
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
failed=()

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, log it, note a failure and go on
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  if ! timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"; then
    failed+=("$name")
    echo "!! $name failed (log: $OUT/$name.log)"
  fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
if ! "$PYTHON" -c "import torch, cuda.bindings; assert torch.cuda.is_available(), 'no CUDA GPU'"; then
  echo "gpu_check: FAILED: this machine has no usable CUDA GPU with torch and cuda-bindings" >&2
  exit 1
fi
if [ -d .whl ]; then
  step 0-wheels 30 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
step 1-cuda-contract 150 "$PYTHON" -m pytest tests/test_cuda_contract.py -m gpu -q -p no:cacheprovider -rs \
  --noconftest
step 2-exit-context 45 "$PYTHON" benchmarks/gpu_check.py --exit-check
step 3-torch-parity 240 "$PYTHON" benchmarks/gpu_check.py --recipes unet deeplabv3plus --out "$OUT"

if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check: FAILED: ${failed[*]}"
  exit 1
fi
echo "gpu_check: all steps passed; figures in $OUT"
