"""Result tables, each built once as a document Table: the console, the HTML page and the Markdown summary
render the same ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..tensorrt.inspection import EngineLayers
from .compare_report import CompareReport
from .document import Table

if TYPE_CHECKING:  # both import torch; parity's table is shown where PyTorch may be missing
    from ..bench.runner import BenchReport
    from ..models.info import ModelFacts


def number(value: float | None, fmt: str) -> str:
    """`value` in `fmt`, or '-' when it is missing or NaN."""
    return "-" if value is None or value != value else format(value, fmt)


def small_classes(small: dict[str, Any] | None) -> list[str]:
    """The classes with small ground-truth components (SmallObjectRecall.to_dict()); none for older JSON."""
    return [name for name, c in (small or {}).get("classes", {}).items() if c["components"]]


def small_recall(small: dict[str, Any] | None, name: str) -> str:
    """'found/components (recall)' of one class, or '-'."""
    counts = (small or {}).get("classes", {}).get(name)
    return f"{counts['found']}/{counts['components']} ({counts['recall']:.0%})" if counts else "-"


def small_columns(small: dict[str, Any] | None) -> list[str]:
    if not small:
        return []
    return [f"small {n} found (< {small['max_area_px']} px)" for n in small_classes(small)]


def parity_table(raw: dict[str, Any]) -> Table:
    """Every artifact of a parity report (ParityReport.to_dict() or its JSON) against the reference."""
    rows = raw["rows"]
    names = list(rows[0]["iou"])
    small = rows[0].get("small_objects")
    columns = ["backend", "artifact", "precision", "mIoU", "ΔmIoU", "pixel agreement", "disagreement on boundary"]
    body = [
        [
            row["backend"],
            row["artifact"],
            row["precision"],
            number(row["miou"], ".4f"),
            "-" if index == 0 else number(row["miou_delta"], "+.5f"),
            "-" if index == 0 else number(row["pixel_agreement"], ".4%"),
            number(row.get("disagreement_on_boundary"), ".0%"),
            "-" if index == 0 else number(row.get("max_abs_logit_diff"), ".1e"),
            *(number(row["iou"][n], ".4f") for n in names),
            *(small_recall(row.get("small_objects"), n) for n in small_classes(small)),
            "reference" if index == 0 else ("FAIL: " + "; ".join(row["failures"]) if row["failures"] else "pass"),
        ]
        for index, row in enumerate(rows)
    ]
    reference = raw.get("reference")  # parity JSON before the stored reference has none
    caption = f"parity on {reference['frames'] if reference else raw['dataset'] + '/' + raw['split']}"
    caption += f" ({raw['images']} images)"
    if reference:
        caption += f" against {reference['file']} (sha256 {reference['sha256'][:12]})"
    return Table(
        [*columns, "max |Δlogit|", *(f"IoU {n}" for n in names), *small_columns(small), "status"], body, caption
    )


def int8_summary(guard: dict[str, Any]) -> str:
    """One line of the INT8 accuracy guard (Int8Result.to_dict(), as the manifest keeps it)."""
    return (
        f"INT8 ({guard['method']} calibration): val mIoU {guard['int8_miou']:.4f} against FP32 "
        f"{guard['fp32_miou']:.4f}, drop {guard['miou_drop']:+.5f} (allowed {guard['max_miou_drop']}), "
        f"{len(guard['kept_in_float'])} nodes kept in float"
        + (
            f"; with the float remainder in FP16 {guard['fp16_remainder_miou']:.4f}."
            if guard.get("fp16_remainder_miou") is not None
            else "."
        )
    )


def sensitivity_table(guard: dict[str, Any], top: int = 15) -> Table:
    """The nodes whose quantization alone harms the logits most, and whether the guard kept them in float."""
    ranking = guard["sensitivity_ranking"]
    kept = set(guard["kept_in_float"])
    return Table(
        ["rank", "node", "op", "error alone", "kept in float"],
        [
            [str(rank), r["node"], r["op_type"], f"{r['error']:.2e}", "yes" if r["node"] in kept else ""]
            for rank, r in enumerate(ranking[:top], start=1)
        ],
        f"The {min(len(ranking), top)} of {len(ranking)} nodes whose quantization alone harms the logits most",
    )


def bench_table(report: BenchReport) -> Table:
    """Latency per artifact and shape; 'vs first' is the first artifact's median over this one's."""
    peak = report.machine.get("sgemm_gflops")
    first: dict[tuple[int, int], float] = {}
    rows = []
    for row in report.rows:
        shape = (row.height, row.width)
        first.setdefault(shape, row.latency_ms["median"])
        rate = number(row.gflops_per_s, ".0f")
        if row.gflops_per_s is not None and peak:
            rate += f" ({100 * row.gflops_per_s / peak:.0f}%)"
        latency = row.latency_ms
        rows.append(
            [
                row.label,
                row.precision,
                f"{row.batch}x{row.height}x{row.width}",
                *(f"{latency[k]:.1f}" for k in ("median", "mean", "p90", "p95", "p99", "min", "max")),
                f"{row.throughput:.1f}",
                *(number(row.stages_ms.get(s, {}).get("median"), ".1f") for s in ("prepare", "infer", "postprocess")),
                rate,
                f"{first[shape] / latency['median']:.2f}x",
            ]
        )
    stats = ["median", "mean", "p90", "p95", "p99", "min", "max"]
    return Table(
        ["artifact", "precision", "shape", *stats, "img/s", "prep", "infer", "post", "GFLOP/s", "vs first"],
        rows,
        f"bench on {report.machine.get('cpu')} ({report.machine.get('cores')} cores), times in ms",
    )


def engine_layers_table(layers: EngineLayers) -> Table:
    """Every layer of an engine with its type and the precisions of its inputs and outputs."""
    return Table(
        ["layer", "type", "precision", "inputs", "outputs"],
        [
            [layer.name, layer.kind, layer.precision, ", ".join(layer.inputs) or "-", ", ".join(layer.outputs) or "-"]
            for layer in layers.layers
        ],
        f"{layers.engine.name}: {len(layers.layers)} layers, as TensorRT's engine inspector reports them",
    )


def compare_table(report: CompareReport) -> Table:
    """mIoU, per-class IoU, boundary vs interior error and small-object recall per model."""
    names = list(report.models[0].iou)
    small = report.models[0].small_objects
    rows = [
        [
            model.label,
            f"{model.architecture}/{model.encoder or 'fixed'}",
            number(model.miou, ".4f"),
            *(number(model.iou[n], ".3f") for n in names),
            f"{100 * model.pixel_accuracy:.2f}%",
            f"{100 * model.boundary['boundary']['error_rate']:.1f}%",
            f"{100 * model.boundary['interior']['error_rate']:.2f}%",
            f"{100 * model.boundary['errors_on_boundary']:.0f}%",
            *(small_recall(model.small_objects, n) for n in small_classes(small)),
        ]
        for model in report.models
    ]
    width = report.boundary_width
    return Table(
        ["model", "architecture", "mIoU", *names, "pixel acc", f"error <= {width} px of boundary", "interior error"]
        + ["errors on boundary", *small_columns(small)],
        rows,
        f"compare on {report.dataset}/{report.split} ({len(report.ids)} images)",
    )


def models_table(facts: list[ModelFacts]) -> Table:
    """The architectures: parameters, GFLOPs at the recipe input size, strides."""
    return Table(
        ["name", "encoder", "params (M)", "input", "GFLOPs", "encoder stride", "head stride", "what"],
        [
            [
                f.name,
                f.encoder or "fixed",
                f"{f.parameters / 1e6:.2f}",
                f"{f.input_size[0]}x{f.input_size[1]}",
                f"{f.gflops:.1f}",
                str(f.encoder_stride),
                str(f.head_stride),
                f.summary,
            ]
            for f in facts
        ],
        "segdeploy models",
    )
