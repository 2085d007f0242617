"""Rich tables for what the CLI prints."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .bench.runner import BenchReport
from .look.compare import CompareReport
from .parity import ParityReport
from .precision.sensitivity import Int8Result

console = Console()
if not console.is_terminal:  # logs and pipes: wide tables stay whole instead of folding at 80 columns
    console.width = max(console.width, 180)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def parity_table(report: ParityReport) -> Table:
    names = list(report.rows[0].iou)
    table = Table(title=escape(f"parity on {report.dataset}/{report.split} ({report.images} images)"))
    columns = ("backend", "artifact", "precision", "mIoU", "ΔmIoU", "agreement", "on boundary", "max|Δlogit|")
    for column in (*columns, *names, "status"):
        table.add_column(escape(column), justify="left" if column in ("backend", "artifact", "status") else "right")
    for index, row in enumerate(report.rows):
        reference = index == 0
        status = "reference" if reference else ("[green]pass[/]" if row.passed else "[red]FAIL[/]")
        diff = "-" if reference or row.max_abs_logit_diff is None else f"{row.max_abs_logit_diff:.2e}"
        table.add_row(
            row.backend,
            escape(row.artifact),
            row.precision,
            _fmt(row.miou),
            "-" if reference else f"{row.miou_delta:+.4f}",
            "-" if reference else f"{100 * row.pixel_agreement:.3f}%",
            "-" if row.disagreement_on_boundary is None else f"{100 * row.disagreement_on_boundary:.0f}%",
            diff,
            *(_fmt(row.iou[n], 3) for n in names),
            status,
        )
    return table


def sensitivity_table(result: Int8Result, top: int = 10) -> Table:
    """The INT8 guard's outcome and, when it ran, the most harmful layers."""
    title = (
        f"INT8 ({result.method}): val mIoU {result.int8_miou:.4f} vs FP32 {result.fp32_miou:.4f}, "
        f"drop {result.drop:+.4f} (allowed {result.max_drop}), {len(result.excluded)} nodes kept in float"
    )
    table = Table(title=title)
    for column in ("rank", "node", "op", "error alone", "kept in float"):
        table.add_column(column, justify="right" if column in ("rank", "error alone") else "left")
    kept = set(result.excluded)
    for rank, layer in enumerate(result.ranking[:top], start=1):
        table.add_row(
            str(rank), escape(layer.node), layer.op_type, f"{layer.error:.2e}", "yes" if layer.node in kept else ""
        )
    return table


def bench_table(report: BenchReport) -> Table:
    """Latency per artifact and shape; 'vs first' is the first artifact's median over this one's."""
    peak = report.machine.get("sgemm_gflops")
    table = Table(
        title=escape(
            f"bench on {report.machine.get('cpu')} ({report.machine.get('cores')} cores), "
            f"batch {report.rows[0].batch}, times in ms"
        )
    )
    for column in (
        "artifact",
        "precision",
        "shape",
        "mean",
        "median",
        "p90",
        "p95",
        "p99",
        "min",
        "max",
        "img/s",
        "prep",
        "infer",
        "post",
        "GFLOP/s",
        "vs first",
    ):
        table.add_column(column, justify="left" if column in ("artifact", "precision") else "right")
    first: dict[tuple[int, int], float] = {}
    for row in report.rows:
        shape = (row.height, row.width)
        first.setdefault(shape, row.latency_ms["median"])
        rate = "-" if row.gflops_per_s is None else f"{row.gflops_per_s:.0f}"
        if row.gflops_per_s is not None and peak:
            rate += f" ({100 * row.gflops_per_s / peak:.0f}%)"
        lat = row.latency_ms
        table.add_row(
            escape(row.label),
            row.precision,
            f"{row.height}x{row.width}",
            *(f"{lat[k]:.1f}" for k in ("mean", "median", "p90", "p95", "p99", "min", "max")),
            f"{row.throughput:.1f}",
            *(f"{row.stages_ms[s]['median']:.1f}" for s in ("prepare", "infer", "postprocess")),
            rate,
            f"{first[shape] / lat['median']:.2f}x",
        )
    return table


def compare_table(report: CompareReport) -> Table:
    """mIoU, per-class IoU and boundary vs interior error per model."""
    names = list(report.models[0].iou)
    width = report.boundary_width
    table = Table(title=escape(f"compare on {report.dataset}/{report.split} ({len(report.ids)} images)"))
    columns = (
        "model",
        "architecture",
        "mIoU",
        *names,
        "pixel acc",
        f"error <= {width} px of boundary",
        "interior error",
    )
    for column in (*columns, "errors on boundary"):
        table.add_column(escape(column), justify="left" if column in ("model", "architecture") else "right")
    for model in report.models:
        split = model.boundary
        table.add_row(
            escape(model.label),
            escape(f"{model.architecture}/{model.encoder or 'fixed'}"),
            _fmt(model.miou),
            *(_fmt(model.iou[n], 3) for n in names),
            f"{100 * model.pixel_accuracy:.2f}%",
            f"{100 * split['boundary']['error_rate']:.1f}%",
            f"{100 * split['interior']['error_rate']:.2f}%",
            f"{100 * split['errors_on_boundary']:.0f}%",
        )
    return table
