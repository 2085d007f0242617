#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs beyond what the lent GPU machines have (Python 3.12, torch +
# CUDA 13, torchvision, cuda-bindings, cupy, onnx, onnxruntime, typer, pytest, PyYAML, Pillow; no package
# index there). Run this on a machine with the index, from the repository root; it fills .whl/ (9 MB,
# ignored by git: copy it to the GPU machine with the checkout, e.g. as a carried path). gpu_check.sh
# installs them with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
# and puts /tmp/site on PYTHONPATH. What needs them: step 3 builds U-Net and DeepLabv3+ with
# segmentation-models-pytorch (import chain: smp -> timm, huggingface-hub -> httpx2, hf-xet, ...);
# steps 1 and 2 need nothing beyond the machine's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(
  segmentation-models-pytorch==0.6.0 timm==1.0.31 huggingface-hub==2.4.0 safetensors==0.8.0 hf-xet==1.8.0
  tqdm==4.70.1 httpx2==2.17.0 httpcore2==2.17.0 anyio==4.16.0 h11==0.16.0 idna==3.21 truststore==0.10.5
)
for wheel in "${WHEELS[@]}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$wheel"
done
ls -la .whl
