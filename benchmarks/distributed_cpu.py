"""Training throughput under torchrun on this machine's CPU: U-Net (ResNet-18) on ISBI 2012 crops, one
process (one thread, then every core) against two processes (gloo, one thread each) with SyncBatchNorm
and with plain BatchNorm, at the same global batch. Configurations are interleaved, `--repeats` times each; the
figure is the trainer's own images_per_second (training steps only, validation excluded) from
history.json. Skips, exit 0, when the data set's folder is absent.

Usage: python benchmarks/distributed_cpu.py [--repeats 3] [--data recipes/data/isbi2012.yaml]
       [--json benchmarks/results/distributed-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "recipes" / "data" / "isbi2012.yaml"
GLOBAL_BATCH, CROP, REPEATS_PER_EPOCH = 8, 128, 4
CONFIGS = {  # name: (processes, threads per process, sync_batchnorm)
    "1 process x 1 thread": (1, 1, True),
    "1 process x 2 threads": (1, 2, True),
    "2 processes x 1 thread, SyncBatchNorm": (2, 1, True),
    "2 processes x 1 thread, plain BatchNorm": (2, 1, False),
}


def write_recipe(path: Path, processes: int, sync_batchnorm: bool) -> Path:
    recipe = yaml.safe_load((REPO / "recipes" / "unet.yaml").read_text())
    recipe["name"] = "unet-isbi-bench"
    recipe["train"].update(
        epochs=1,
        batch_size=GLOBAL_BATCH // processes,
        crop=[CROP, CROP],
        repeats=REPEATS_PER_EPOCH,
        sync_batchnorm=sync_batchnorm,
    )
    path.write_text(yaml.safe_dump(recipe))
    return path


def run(name: str, data: Path, work: Path) -> dict[str, float]:
    processes, threads, sync_batchnorm = CONFIGS[name]
    out = work / f"run-{time.monotonic_ns()}"
    recipe = write_recipe(work / f"{out.name}.yaml", processes, sync_batchnorm)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    command += ["-m", "segdeploy", "train", str(recipe), "--data", str(data), "--out", str(out), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True)
    wall = time.perf_counter() - started
    history = json.loads((out / "history.json").read_text())[0]
    return {"images_per_second": history["images_per_second"], "wall_seconds": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "distributed-cpu.json")
    args = parser.parse_args()
    root = args.data.parent / yaml.safe_load(args.data.read_text())["root"]
    if not root.is_dir():
        print(f"skip: {root} is absent")
        return
    results: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as work:
        for repeat in range(args.repeats):
            for name in CONFIGS:
                results[name].append(run(name, args.data.resolve(), Path(work)))
                print(f"repeat {repeat + 1} {name}: {results[name][-1]}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    setup = {"global_batch": GLOBAL_BATCH, "crop": CROP, "repeats_per_epoch": REPEATS_PER_EPOCH, "data": str(args.data)}
    args.json.write_text(json.dumps({"setup": setup, "runs": results}, indent=2) + "\n")
    print("| configuration | images/s (median) | runs | wall s per run |\n| --- | --- | --- | --- |")
    for name, runs in results.items():
        rates = [r["images_per_second"] for r in runs]
        walls = ", ".join(f"{r['wall_seconds']:.0f}" for r in runs)
        print(f"| {name} | {statistics.median(rates):.2f} | {', '.join(f'{x:.2f}' for x in rates)} | {walls} |")


if __name__ == "__main__":
    main()
