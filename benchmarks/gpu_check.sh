#!/usr/bin/env bash
# The GPU check (issue: Hardware), for a machine with one NVIDIA GPU, torch and cuda-python
# (cuda-bindings), no TensorRT needed; under 8 minutes on one H100/H200. Usage: benchmarks/gpu_check.sh
#  1. the CUDA-layer contract suite on the real GPU (tests/test_cuda_contract.py, marker gpu), which
#     includes graph capture and replay of torch kernels on a segdeploy stream;
#  2. a CUDA session left open at exit: no context may be current after the finalisers ran;
#  3. PyTorch CUDA parity and latency (FP32, FP16 autocast, channels_last, CUDA graphs) for U-Net
#     and DeepLabv3+, appended to benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c "import torch, cuda.bindings; assert torch.cuda.is_available(), 'no CUDA GPU'"
echo "== 1. CUDA-layer contract suite on the GPU"
timeout 180 "$PYTHON" -m pytest tests/test_cuda_contract.py -m gpu -q -p no:cacheprovider -rs
echo "== 2. context stack at exit"
timeout 60 "$PYTHON" benchmarks/gpu_check.py --exit-check
echo "== 3. PyTorch CUDA parity and latency"
timeout 240 "$PYTHON" benchmarks/gpu_check.py --recipes unet deeplabv3plus
