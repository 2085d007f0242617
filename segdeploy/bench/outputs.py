"""A bench run with its files: the JSON of every figure and the latency plot, refused before running
when they would overwrite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import SegdeployError
from ..files import refuse_overwrite, write_json
from .runner import BenchConfig, BenchReport, run_bench


def bench_to_files(
    artifacts: list[Path],
    config: BenchConfig,
    json_out: Path | None = None,
    plot: Path | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> BenchReport:
    """`run_bench`, then the report as JSON to `json_out` and latency against pixels as a PNG to `plot`."""
    if plot is not None and len(config.shapes) < 2:
        raise SegdeployError("--plot needs two or more --shape values")
    refuse_overwrite([p for p in (json_out, plot) if p is not None], force)
    report = run_bench(artifacts, config, log=log)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if plot is not None:
        from .plot import latency_plot

        latency_plot(report, plot)
    return report
