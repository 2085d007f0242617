"""The sections of segdeploy report built from JSON alone: parity, latency, INT8 guard, manifest facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bench.runner import BenchReport
from ..precision_table import FP32
from .document import Picture, Section, Table, Text
from .figures import figure_png, iou_bars
from .tables import bench_table, int8_summary, parity_table, sensitivity_table


def _tolerances(tolerance: dict[str, Any]) -> str:
    bounds = {FP32.name: tolerance, **{k: v for k, v in tolerance.items() if isinstance(v, dict)}}
    return (
        "; ".join(
            f"{name} |ΔmIoU| <= {b['miou_delta']}, agreement >= {b['pixel_agreement']}" for name, b in bounds.items()
        )
        + f"; {FP32.name} max |Δlogit| <= {tolerance['logits_max_abs']} + {FP32.validation.rtol} x max |logit|"
    )


def parity_section(path: Path, raw: dict[str, Any]) -> Section:
    rows = raw["rows"]
    table = parity_table(raw)
    summary = Text(
        f"{path.name}: {raw['dataset']}/{raw['split']}, {raw['images']} images, every artifact against "
        f"{rows[0]['artifact']} ({rows[0]['backend']}); {'passed' if raw.get('passed') else 'FAILED'} the "
        f"recipe's tolerances ({_tolerances(raw['tolerance'])}). mIoU from a confusion matrix over the whole "
        "split; agreement is with the reference's argmax; 'on boundary' is the share of disagreeing pixels "
        "within 3 px of a class boundary; 'small ... found' counts the ground-truth components (8-connected) "
        "under the stated area that an artifact finds (at least half their pixels predicted as their class): "
        "isolated weeds an artifact loses show there even when mIoU does not move."
    )
    labelled = any(value is not None for row in rows for value in row["iou"].values())  # random frames: no labels
    bars = [Picture(figure_png(iou_bars(rows)), "image/png", "per-class IoU of every artifact")] if labelled else []
    skipped = [Text(f"Not run on the parity machine: {'; '.join(raw['skipped'])}.")] if raw.get("skipped") else []
    return Section(f"Parity: {raw['dataset']}/{raw['split']}", [summary, table, *skipped, *bars])


def latency_section(path: Path, report: BenchReport) -> Section:
    machine = report.machine
    blocks: list[Any] = [
        Text(
            f"{path.name}, {report.created}: {machine.get('cpu')} ({machine.get('cores')} cores), "
            f"{len(report.rows)} rows, {report.config.get('iterations')} timed iterations after "
            f"{report.config.get('warmup')} warm-up, artifacts interleaved. Times in ms; 'vs first' is the first "
            "artifact's median over this one's at the same shape."
        ),
        bench_table(report),
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
        section.blocks.append(Text(f"{name}: {int8_summary(guard)}"))
        if not guard.get("sensitivity_ranking"):
            section.blocks.append(Text("No sensitivity ranking: the drop was within bounds without --sensitivity."))
            continue
        section.blocks.append(sensitivity_table(guard))
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
