"""PyTorch on CUDA for benchmarks/gpu_check.sh: parity of FP32, FP16 autocast, channels_last and CUDA
graphs against PyTorch FP32 on the CPU, and their latency, for U-Net and DeepLabv3+ freshly initialised
(the kernels are under test, not the weights; no ONNX export, so no exporter packages are needed).
Writes gpu_check.md and gpu_check.json to --out; appends the table to --results when given. Exits
non-zero when a variant agrees on fewer than 99% of pixels.

    python benchmarks/gpu_check.py --out DIR [--recipes unet deeplabv3plus] [--results FILE]
    python benchmarks/gpu_check.py --exit-check    # a CUDA session left open: no context at exit
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("eager", "autocast", "channels_last", "cudagraph")  # FP32 NCHW, FP16 autocast, NHWC, graphs


@dataclass(frozen=True)
class Row:
    model: str
    variant: str
    precision: str
    agreement: float  # pixel agreement of class maps with PyTorch FP32 on the CPU
    max_abs: float  # largest logit difference
    median_ms: float
    p90_ms: float


def check_variants(
    checkpoint: Path, frames: np.ndarray, device: str, variants: tuple[str, ...], iterations: int
) -> list[Row]:
    """Each variant's parity against the CPU FP32 reference and its latency for one frame."""
    from segdeploy.backends import open_backend

    reference = open_backend(checkpoint, device="cpu", torch_variant="eager").run(frames)
    rows = []
    for variant in variants:
        backend = open_backend(checkpoint, device=device, torch_variant=variant)
        output = backend.run(frames)
        single = frames[:1]
        for _ in range(3):
            backend.run(single)
        times = []
        for _ in range(iterations):
            start = time.perf_counter()
            backend.run(single)  # returns numpy: the device work is finished
            times.append((time.perf_counter() - start) * 1e3)
        rows.append(
            Row(
                checkpoint.parent.name,
                variant,
                backend.precision,
                float((output.argmax(1) == reference.argmax(1)).mean()),
                float(np.abs(output - reference).max()),
                statistics.median(times),
                float(np.percentile(times, 90)),
            )
        )
    return rows


def markdown(rows: list[Row], machine: str, command: str, shape: tuple[int, int]) -> str:
    lines = [
        f"## {datetime.date.today().isoformat()} — PyTorch on CUDA: parity and latency (gpu_check)",
        "",
        f"Machine: {machine}. Command: `{command}`. Freshly initialised models, {shape[0]}x{shape[1]},",
        "parity on 4 random frames against PyTorch FP32 on the CPU, latency of one frame (host to host).",
        "",
        "| model | variant | precision | pixel agreement | max abs logit diff | median ms | p90 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.model} | {r.variant} | {r.precision} | {r.agreement:.5f} | {r.max_abs:.2e} | "
        f"{r.median_ms:.2f} | {r.p90_ms:.2f} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def exit_verdict(current_context: Callable[[], int]) -> None:
    """Print which context is current and end the process with status 1 when one is. An atexit callback
    cannot fail the process with sys.exit ("Exception ignored in atexit callback", the status stays 0):
    os._exit can, after stdout is flushed."""
    current = current_context()
    print(f"context current at exit: {'none' if current == 0 else hex(current)}", flush=True)
    if current:
        os._exit(1)


def exit_check(open_session: Callable[[], Any], current_context: Callable[[], int]) -> Any:
    """Leave a CUDA session open and let the interpreter exit: the finaliser must release it, leaving no
    context current (pycuda aborts the process when one is). The verdict is registered first, so it runs
    after the finalisers."""
    atexit.register(exit_verdict, current_context)
    session = open_session()
    session.alloc(1 << 20)
    session.stream()
    return session


def _cuda_exit_check() -> None:
    from cuda.bindings import driver as cu

    from segdeploy.cuda import CudaSession

    exit_check(lambda: CudaSession(0), lambda: int(cu.cuCtxGetCurrent()[1]))


def fresh_checkpoint(name: str, folder: Path) -> tuple[Path, tuple[int, int]]:
    """The recipe's model, freshly initialised, saved as a segdeploy checkpoint; and its input size."""
    from segdeploy.meta import ModelMeta, default_colors
    from segdeploy.models.checkpoint import save_checkpoint
    from segdeploy.models.registry import build_model
    from segdeploy.recipes import load_recipe

    recipe = load_recipe(name)
    network = build_model(recipe.architecture, recipe.encoder, recipe.num_classes)
    meta = ModelMeta(recipe, [f"class{i}" for i in range(recipe.num_classes)], default_colors(recipe.num_classes))
    path = folder / name / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, network, meta), recipe.input_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipes", nargs="+", default=["unet", "deeplabv3plus"])
    parser.add_argument("--out", type=Path, help="folder for gpu_check.md, gpu_check.json and the checkpoints")
    parser.add_argument("--results", type=Path, help="a RESULTS.md to append the table to")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--exit-check", action="store_true")
    args = parser.parse_args()
    if args.exit_check:
        _cuda_exit_check()
        return
    if args.out is None:
        parser.error("--out DIR is required")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA GPU")
    rows: list[Row] = []
    shape = (0, 0)
    for name in args.recipes:
        checkpoint, shape = fresh_checkpoint(name, args.out / "models")
        frames = np.random.default_rng(0).integers(0, 256, size=(4, *shape, 3), dtype=np.uint8)
        rows += check_variants(checkpoint, frames, "cuda", VARIANTS, args.iterations)
    machine = f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    machine += f", {platform.node()}"
    text = markdown(rows, machine, "benchmarks/gpu_check.sh OUT", shape)
    print(text)
    (args.out / "gpu_check.md").write_text(text)
    figures = {"machine": machine, "rows": [dataclasses.asdict(row) for row in rows]}
    (args.out / "gpu_check.json").write_text(json.dumps(figures, indent=1) + "\n")
    if args.results is not None:
        with args.results.open("a") as results:
            results.write("\n" + text)
    worst = min(rows, key=lambda r: r.agreement)
    if worst.agreement < 0.99:
        raise SystemExit(f"gpu_check: {worst.model} [{worst.variant}] agrees on only {worst.agreement:.4f} of pixels")


if __name__ == "__main__":
    main()
