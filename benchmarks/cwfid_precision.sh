#!/usr/bin/env bash
# Train on CWFID from scratch on the CPU, export FP32/FP16/INT8, and measure parity on the val split.
# Usage: benchmarks/cwfid_precision.sh RECIPE   (unet-cwfid, deeplabv3plus-cwfid or lraspp-cwfid)
# Figures land in benchmarks/results/RECIPE-*.json; RESULTS.md quotes them.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:-unet-cwfid}
data=recipes/data/cwfid.yaml
mkdir -p benchmarks/results
/usr/bin/time -f "train wall %e s, peak RSS %M KB" segdeploy train "$recipe" --data "$data" --out "runs/$recipe" --force
[ -f calibration/cwfid/manifest.json ] || segdeploy calibrate --data "$data" --split train --num 32 --name cwfid
segdeploy export "$recipe" --checkpoint "runs/$recipe/best.pt" --out "exports/$recipe" --force \
  --fp16 --int8 --calib calibration/cwfid --calib-method entropy
segdeploy parity "exports/$recipe" --data "$data" --split val --json "benchmarks/results/$recipe-parity.json" \
  --save-disagreement "exports/$recipe/disagreement"
cp "runs/$recipe/history.json" "benchmarks/results/$recipe-history.json"
