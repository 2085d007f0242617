"""Latency against pixels per artifact, with the fitted line: how cost grows with resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_path
from .runner import BenchReport


def latency_figure(report: BenchReport) -> Any:
    """The matplotlib figure of median latency against megapixels, one series per artifact."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for label in dict.fromkeys(r.label for r in report.rows):
        rows = sorted((r for r in report.rows if r.label == label), key=lambda r: r.height * r.width)
        megapixels = [r.batch * r.height * r.width / 1e6 for r in rows]
        medians = [r.latency_ms["median"] for r in rows]
        lows = [r.latency_ms["median"] - r.latency_ms["min"] for r in rows]
        highs = [r.latency_ms["p95"] - r.latency_ms["median"] for r in rows]
        points = axes.errorbar(megapixels, medians, yerr=[lows, highs], fmt="o", capsize=3, label=label)
        fit = report.scaling.get(label)
        if fit:
            xs = [0, max(megapixels) * 1.05]
            axes.plot(
                xs,
                [fit["intercept_ms"] + fit["ms_per_megapixel"] * x for x in xs],
                "--",
                color=points[0].get_color(),
                linewidth=1,
            )
    axes.set_xlabel("megapixels per batch")
    axes.set_ylabel("latency, median ms (bars: min to p95)")
    axes.set_title(f"segdeploy bench on {report.machine.get('cpu', '?')}, batch {report.rows[0].batch}")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def latency_plot(report: BenchReport, target: Path) -> Path:
    import matplotlib.pyplot as plt

    figure = latency_figure(report)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return target
