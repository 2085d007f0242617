"""The sections of segdeploy report built from JSON alone: parity, latency, INT8 guard, manifest facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bench.runner import BenchReport
from .document import Picture, Section, Table, Text
from .figures import figure_png, iou_bars


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


def _tolerances(tolerance: dict[str, Any]) -> str:
    bounds = {"fp32": tolerance, **{k: v for k, v in tolerance.items() if isinstance(v, dict)}}
    return (
        "; ".join(
            f"{name} |ΔmIoU| <= {b['miou_delta']}, agreement >= {b['pixel_agreement']}" for name, b in bounds.items()
        )
        + f"; fp32 max |Δlogit| <= {tolerance['logits_max_abs']}"
    )


def parity_section(path: Path, raw: dict[str, Any]) -> Section:
    rows = raw["rows"]
    names = list(rows[0]["iou"])
    table = Table(
        [
            "backend",
            "artifact",
            "precision",
            "mIoU",
            "ΔmIoU",
            "pixel agreement",
            "disagreement on boundary",
            "max |Δlogit|",
            *(f"IoU {n}" for n in names),
            "status",
        ],
        [
            [
                row["backend"],
                row["artifact"],
                row["precision"],
                _num(row["miou"], ".4f"),
                "-" if index == 0 else _num(row["miou_delta"], "+.5f"),
                "-" if index == 0 else _num(row["pixel_agreement"], ".4%"),
                _num(row.get("disagreement_on_boundary"), ".0%"),
                "-" if index == 0 else _num(row.get("max_abs_logit_diff"), ".1e"),
                *(_num(row["iou"][n], ".4f") for n in names),
                "reference" if index == 0 else ("FAIL: " + "; ".join(row["failures"]) if row["failures"] else "pass"),
            ]
            for index, row in enumerate(rows)
        ],
    )
    summary = Text(
        f"{path.name}: {raw['dataset']}/{raw['split']}, {raw['images']} images, every artifact against "
        f"{rows[0]['artifact']} ({rows[0]['backend']}); {'passed' if raw.get('passed') else 'FAILED'} the "
        f"recipe's tolerances ({_tolerances(raw['tolerance'])}). mIoU from a confusion matrix over the whole "
        "split; agreement is with the reference's argmax; 'on boundary' is the share of disagreeing pixels "
        "within 3 px of a class boundary."
    )
    bars = Picture(figure_png(iou_bars(rows)), "image/png", "per-class IoU of every artifact")
    skipped = [Text(f"Not run on the parity machine: {'; '.join(raw['skipped'])}.")] if raw.get("skipped") else []
    return Section(f"Parity: {raw['dataset']}/{raw['split']}", [summary, table, *skipped, bars])


def latency_section(path: Path, report: BenchReport) -> Section:
    machine = report.machine
    first: dict[tuple[int, int], float] = {}
    rows = []
    for row in report.rows:
        median = row.latency_ms["median"]
        first.setdefault((row.height, row.width), median)
        rows.append(
            [
                row.label,
                row.precision,
                f"{row.batch}x{row.height}x{row.width}",
                *(f"{row.latency_ms[k]:.1f}" for k in ("median", "mean", "p95", "p99", "min")),
                f"{row.throughput:.1f}",
                _num(row.gflops_per_s, ".0f"),
                f"{first[(row.height, row.width)] / median:.2f}x",
            ]
        )
    blocks: list[Any] = [
        Text(
            f"{path.name}, {report.created}: {machine.get('cpu')} ({machine.get('cores')} cores), "
            f"{len(report.rows)} rows, {report.config.get('iterations')} timed iterations after "
            f"{report.config.get('warmup')} warm-up, artifacts interleaved. Times in ms; 'vs first' is the first "
            "artifact's median over this one's at the same shape."
        ),
        Table(
            ["artifact", "precision", "shape", "median", "mean", "p95", "p99", "min", "img/s", "GFLOP/s", "vs first"],
            rows,
        ),
    ]
    if report.scaling:
        from ..bench.plot import latency_figure

        blocks.append(Picture(figure_png(latency_figure(report)), "image/png", "median latency against pixels"))
    return Section(f"Latency ({path.name})", blocks)


def int8_section(manifest: dict[str, Any]) -> Section | None:
    guarded = [(name, a["accuracy_guard"]) for name, a in manifest["artifacts"].items() if "accuracy_guard" in a]
    if not guarded:
        return None
    section = Section("INT8 accuracy guard and sensitivity")
    for name, guard in guarded:
        section.blocks.append(
            Text(
                f"{name} ({guard['method']} calibration): val mIoU {guard['int8_miou']:.4f} against FP32 "
                f"{guard['fp32_miou']:.4f}, drop {guard['miou_drop']:+.5f} (allowed {guard['max_miou_drop']}), "
                f"{len(guard['kept_in_float'])} nodes kept in float."
            )
        )
        ranking = guard.get("sensitivity_ranking") or []
        if not ranking:
            section.blocks.append(Text("No sensitivity ranking: the drop was within bounds without --sensitivity."))
            continue
        kept = set(guard["kept_in_float"])
        section.blocks.append(
            Table(
                ["rank", "node", "op", "error alone", "kept in float"],
                [
                    [str(rank), r["node"], r["op_type"], f"{r['error']:.2e}", "yes" if r["node"] in kept else ""]
                    for rank, r in enumerate(ranking[:15], start=1)
                ],
                f"The {min(len(ranking), 15)} of {len(ranking)} nodes whose quantization alone harms the logits most",
            )
        )
    return section


def _shapes(signature: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['name']} {s['dtype']} {'x'.join(str(d) for d in s['shape'])}" for s in signature)


def manifest_section(manifest: dict[str, Any], machine: dict[str, Any] | None) -> Section:
    model = manifest["model"]
    recipe = model["recipe"]
    source = manifest.get("source_checkpoint") or {}
    facts = [
        ["created", manifest["created"]],
        ["recipe", f"{recipe['name']}: {recipe['architecture']} / {recipe.get('encoder') or 'fixed'}"],
        ["input size", "x".join(str(v) for v in recipe["input_size"])],
        ["classes", ", ".join(f"{n} {tuple(c)}" for n, c in zip(model["class_names"], model["colors"]))],
        ["source checkpoint", f"{source.get('path', '-')} sha256 {source.get('sha256', '-')}"],
        ["preprocessing", str(manifest["preprocessing"].get("input"))],
        ["output", str(manifest.get("output"))],
        ["dynamic shapes (min, opt, max)", ", ".join(f"{k} {v}" for k, v in manifest["dynamic_shapes"].items())],
        *([k, v] for k, v in manifest["versions"].items()),
    ]
    if machine:
        facts += [
            ["bench machine", f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB"],
            ["CPU flags", ", ".join(machine.get("cpu_flags") or []) or "-"],
            ["GPUs", ", ".join(g["name"] for g in machine.get("gpus") or []) or "none"],
            ["platform", str(machine.get("platform"))],
        ]
    artifacts = [
        [
            name,
            entry.get("kind", "-"),
            entry.get("precision", "-"),
            f"{entry['bytes'] / 1e6:.1f} MB",
            entry["sha256"],
            str(entry.get("opset", "-")),
            _shapes(entry.get("inputs", [])) or "-",
            _shapes(entry.get("outputs", [])) or "-",
        ]
        for name, entry in manifest["artifacts"].items()
    ]
    return Section(
        "Manifest",
        [
            Table(["fact", "value"], facts),
            Table(["artifact", "kind", "precision", "size", "sha256", "opset", "inputs", "outputs"], artifacts),
        ],
    )
