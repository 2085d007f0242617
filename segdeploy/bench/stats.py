"""Latency statistics over per-iteration times, and the line fitted through latency against pixels."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize(times_ms: list[float]) -> dict[str, float]:
    """mean, median, p90, p95, p99, min, max and standard deviation of per-iteration times (ms)."""
    if not times_ms:
        raise ValueError("no timings to summarize")
    values = np.asarray(times_ms, dtype=np.float64)
    p50, p90, p95, p99 = np.percentile(values, PERCENTILES)
    return {
        "mean": float(values.mean()),
        "median": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(values.min()),
        "max": float(values.max()),
        "std": float(values.std()),
    }


def fit_line(pixels: list[float], latency_ms: list[float]) -> tuple[float, float]:
    """Least-squares (intercept ms, slope ms per megapixel) of latency against pixels per batch."""
    if len(pixels) < 2:
        raise ValueError("a line needs at least two shapes")
    slope, intercept = np.polyfit(np.asarray(pixels) / 1e6, np.asarray(latency_ms), 1)
    return float(intercept), float(slope)
