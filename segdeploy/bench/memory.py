"""Peak resident memory per artifact, each measured alone in a fresh process."""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.table import row_for
from ..meta import CHANNELS


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not getrusage's ru_maxrss: Linux carries that
    across fork and exec, so a fresh child would report its parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _probe(path: str, config: Any) -> dict[str, dict[str, float]]:
    baseline = _status_mb("VmRSS")
    height, width = max(config.shapes, key=lambda s: s[0] * s[1])
    frames = np.zeros((config.batch, height, width, CHANNELS), dtype=np.uint8)
    results = {}
    for opened in config.open(Path(path)):
        with opened as backend:
            for _ in range(2):
                backend.run(frames)
            held = backend.memory()
            device = held["device_bytes"]
            results[backend.label] = {
                "baseline_rss_mb": round(baseline, 1),
                "peak_rss_mb": round(_status_mb("VmHWM"), 1),
                "height": height,
                "width": width,
                "backend_host_mb": round(held["host_bytes"] / 2**20, 1),
                **({} if not device else {"backend_device_mb": round(device / 2**20, 1)}),
            }
    return results


def peak_memory(path: Path, config: Any) -> dict[str, dict[str, float]]:
    """Load `path` in a new process per variant, run the largest shape, and report its peak RSS (MiB)
    against the RSS of the same process before loading (torch imported, no model)."""
    variants = config.torch_variants if "torch_variants" in row_for(path).capabilities else config.torch_variants[:1]
    results: dict[str, dict[str, float]] = {}
    for variant in variants:
        single = dataclasses.replace(config, torch_variants=(variant,))
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            results.update(pool.submit(_probe, str(path), single).result())
    return results
