"""Parity: every artifact of an export folder against the PyTorch reference, over a data split."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts.manifest import read_manifest
from .backends import BackendOptions, open_backend, open_variants
from .backends.base import Backend
from .backends.table import backend_choice, row_of_kind
from .data.dataset import SegmentationSplit
from .data.spec import DatasetSpec
from .disagreement import boundary_band
from .disagreement import save_disagreement as save_disagreement_map
from .errors import SegdeployError
from .evaluate import batches, predictions
from .files import refuse_overwrite, require_writable, write_json
from .metrics import ConfusionMatrix, SmallObjectRecall
from .precision_table import PRECISIONS, LogitTolerance
from .recipes import Tolerance


@dataclass(frozen=True)
class ParityOptions:
    """How a parity run goes and what it writes: `batch_size` frames at a time on `device`; every ONNX model
    once per `backends` choice (NAME[:PRECISION]; none: ONNX Runtime); with `save_disagreement`, a map per
    artifact and image of where it disagrees with the reference; with `json_out`, the report as JSON (refused
    before running when it exists, unless `force`)."""

    batch_size: int = 4
    device: str = "cpu"
    save_disagreement: Path | None = None
    json_out: Path | None = None
    force: bool = False
    backends: tuple[str, ...] = ()


@dataclass
class ParityRow:
    backend: str
    artifact: str
    precision: str
    miou: float
    iou: dict[str, float]
    miou_delta: float = 0.0
    pixel_agreement: float = 1.0
    max_abs_logit_diff: float | None = 0.0
    disagreement_on_boundary: float | None = None  # share of disagreeing pixels within 3 px of a boundary
    failures: list[str] = field(default_factory=list)
    image_agreement: dict[str, float] = field(default_factory=dict)  # per image id, with the reference
    small_objects: dict[str, Any] = field(default_factory=dict)  # SmallObjectRecall.to_dict(), with the truth
    graph: str = ""  # the artifact's file in the export folder
    choice: str = ""  # the backend as --backend spells it (NAME[:PRECISION]), to run the file the same way again

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class ParityReport:
    artifact_dir: str
    dataset: str
    split: str
    images: int
    tolerance: dict[str, float]
    rows: list[ParityRow]
    data: str = ""  # the dataset YAML
    skipped: list[str] = field(default_factory=list)  # artifacts this machine cannot run, with the reason
    warnings: list[str] = field(default_factory=list)  # e.g. class names that differ from the data set's
    reference: dict[str, str] = field(default_factory=dict)  # what every artifact was compared against

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


class Tally:
    """Accumulates one backend's agreement with the reference and with the ground truth."""

    def __init__(self, backend: Backend, num_classes: int, ignore_index: int, logits: LogitTolerance) -> None:
        self.backend = backend
        self.logits = logits
        self.logits_excess = float("-inf")  # the worst image's |logit diff| beyond its bound (> 0: fails)
        self.matrix = ConfusionMatrix(num_classes, ignore_index)
        self.small = SmallObjectRecall(num_classes, ignore_index=ignore_index)
        self.agree = 0
        self.pixels = 0
        self.on_boundary = 0
        self.max_diff: float | None = 0.0
        self.nonfinite = 0  # NaN or infinite logits seen
        self.image_agreement: dict[str, float] = {}

    def add(
        self,
        output: np.ndarray,
        reference_logits: np.ndarray | None,
        reference_labels: np.ndarray,
        masks: np.ndarray,
        ids: list[str],
    ) -> np.ndarray:
        if output.dtype.kind == "f":
            self.nonfinite += int((~np.isfinite(output)).sum())
        labels = predictions(output)
        self.matrix.update(labels, masks)
        self.small.update(labels, masks)
        differ = labels != reference_labels
        for sample_id, image_differ in zip(ids, differ):
            self.image_agreement[sample_id] = 1.0 - float(image_differ.mean())
        self.agree += int(differ.size - differ.sum())
        if differ.any():
            self.on_boundary += int((differ & boundary_band(reference_labels)).sum())
        self.pixels += labels.size
        if output.ndim == 4 and reference_logits is not None and self.max_diff is not None:
            self.max_diff = max(self.max_diff, float(np.abs(output - reference_logits).max()))
            self.logits_excess = max(self.logits_excess, self.logits.excess(reference_logits, output))
        else:
            self.max_diff = None
        return labels


def check_classes(backend: Backend, spec: DatasetSpec, name: str | None = None) -> str | None:
    """Refuse a model whose class count differs from the data set's (`name`: how to call it [its label]);
    returns a warning when the count agrees but the names do not."""
    names = ", ".join(backend.meta.class_names)
    if backend.meta.num_classes != spec.num_classes:
        raise SegdeployError(
            f"{name or backend.label}: model has {backend.meta.num_classes} classes "
            f"({names}) but {spec.source} has {spec.num_classes}"
        )
    if backend.meta.class_names != spec.class_names:
        return (
            f"{name or backend.label}: class names ({names}) differ from {spec.source}'s "
            f"({', '.join(spec.class_names)}); classes are matched by index"
        )
    return None


def parity_row(tally: Tally, reference: ConfusionMatrix | None, names: list[str], tolerance: Tolerance) -> ParityRow:
    backend = tally.backend
    row = ParityRow(
        backend.name,
        backend.label,
        backend.precision,
        tally.matrix.miou(),
        dict(zip(names, tally.matrix.iou().tolist())),
        small_objects=tally.small.to_dict(names),
        choice=backend.choice,
    )
    if tally.nonfinite:
        row.failures.append(f"{tally.nonfinite} NaN or infinite logits")
    if reference is None:
        return row
    row.miou_delta = row.miou - reference.miou()
    row.pixel_agreement = tally.agree / max(tally.pixels, 1)
    row.max_abs_logit_diff = tally.max_diff
    disagreeing = tally.pixels - tally.agree
    row.disagreement_on_boundary = tally.on_boundary / disagreeing if disagreeing else None
    row.image_agreement = tally.image_agreement
    allowed = tolerance.for_precision(row.precision)
    if abs(row.miou_delta) > allowed.miou_delta:
        row.failures.append(f"|mIoU delta| {abs(row.miou_delta):.4f} > {allowed.miou_delta}")
    if row.pixel_agreement < allowed.pixel_agreement:
        row.failures.append(f"pixel agreement {row.pixel_agreement:.5f} < {allowed.pixel_agreement}")
    rule = PRECISIONS.get(row.precision)
    if rule is not None and rule.parity_logits and row.max_abs_logit_diff is not None and tally.logits_excess > 0:
        row.failures.append(f"max |logit diff| {row.max_abs_logit_diff:.2e} > {tally.logits} on an image")
    return row


def run_parity(
    artifact_dir: Path, spec: DatasetSpec, split: str = "val", options: ParityOptions | None = None
) -> ParityReport:
    """Run the reference (model.pt) and every ONNX artifact in `artifact_dir` over `split` of `spec`, as
    `options` say (ParityOptions)."""
    run = options or ParityOptions()
    manifest, runnable, skipped = prepare_run(artifact_dir, run)
    checkpoint = reference_artifact(manifest, artifact_dir)
    opening = BackendOptions(device=run.device)
    with (
        open_backend(artifact_dir / checkpoint, opening, logits=True) as reference,
        contextlib.ExitStack() as opened,
    ):
        others, graphs = open_runnable(opened, artifact_dir, runnable, opening, run.backends)
        report = _compare(reference, others, spec, split, run.batch_size, run.save_disagreement, artifact_dir, skipped)
    for row, graph in zip(report.rows, [checkpoint, *graphs]):
        row.graph = graph
    sha256 = str(manifest["artifacts"][checkpoint].get("sha256"))
    report.reference = {"file": checkpoint, "sha256": sha256, "frames": f"{spec.name}/{split}"}
    if run.json_out is not None:
        write_json(run.json_out, report.to_dict())
    return report


def open_runnable(
    opened: contextlib.ExitStack,
    artifact_dir: Path,
    runnable: list[str],
    options: BackendOptions,
    backends: tuple[str, ...],
) -> tuple[list[Backend], list[str]]:
    """Every runnable artifact opened once per `backends` choice that runs it (none: its default backend),
    closed with `opened`; and the file each came from."""
    others, graphs = [], []
    for name in runnable:
        for backend in open_variants(artifact_dir / name, options, (options.torch_variant,), (False,), backends):
            others.append(opened.enter_context(backend))
            graphs.append(name)
    return others, graphs


def prepare_run(artifact_dir: Path, options: ParityOptions) -> tuple[dict[str, Any], list[str], list[str]]:
    """Check a parity run's options before any work: (the manifest, the artifacts to run, those skipped)."""
    if options.batch_size < 1:
        raise SegdeployError(f"--batch {options.batch_size}: expected 1 or more")
    for choice in options.backends:
        backend_choice(choice)
    refuse_overwrite([options.json_out] if options.json_out else [], options.force)
    if options.save_disagreement is not None:  # a read-only folder is found now, not after the run
        require_writable(options.save_disagreement)
    manifest = read_manifest(artifact_dir)
    runnable, skipped = runnable_artifacts(manifest)
    if not runnable:
        raise SegdeployError(f"{artifact_dir}: the manifest lists no exported artifacts to compare")
    return manifest, runnable, skipped


def _compare(
    reference: Backend,
    others: list[Backend],
    spec: DatasetSpec,
    split: str,
    batch_size: int,
    save_disagreement: Path | None,
    artifact_dir: Path,
    skipped: list[str],
) -> ParityReport:
    warnings = [w for w in (check_classes(backend, spec) for backend in (reference, *others)) if w]
    data = SegmentationSplit(spec, split)
    logits = reference.meta.recipe.tolerance.logits()
    tallies = [Tally(b, spec.num_classes, spec.ignore_index, logits) for b in (reference, *others)]
    seen = 0
    for frames, masks in batches(data, batch_size):
        reference_logits = reference.run(frames)
        reference_labels = reference_logits.argmax(1)
        ids = data.ids[seen : seen + len(frames)]
        tallies[0].add(reference_logits, reference_logits, reference_labels, masks, ids)
        for tally in tallies[1:]:
            labels = tally.add(tally.backend.run(frames), reference_logits, reference_labels, masks, ids)
            if save_disagreement is None:
                continue
            for offset, sample_id in enumerate(ids):
                save_disagreement_map(
                    save_disagreement,
                    tally.backend.label,
                    sample_id,
                    frames[offset],
                    reference_labels[offset],
                    labels[offset],
                )
        seen += len(frames)
    tolerance = reference.meta.recipe.tolerance
    rows = [parity_row(tallies[0], None, spec.class_names, tolerance)]
    rows += [parity_row(t, tallies[0].matrix, spec.class_names, tolerance) for t in tallies[1:]]
    return ParityReport(
        str(artifact_dir), spec.name, split, len(data), asdict(tolerance), rows, spec.source, skipped, warnings
    )


def reference_artifact(manifest: dict[str, Any], artifact_dir: Path) -> str:
    """The checkpoint a manifest lists, which every other artifact is compared against."""
    for name, entry in manifest["artifacts"].items():
        row = row_of_kind(str(entry.get("kind")))
        if row is not None and "reference" in row.capabilities:
            return str(name)
    raise SegdeployError(f"{artifact_dir}: the manifest lists no reference checkpoint")


def runnable_artifacts(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The ONNX models and engines a manifest lists, and those this machine cannot run (no TensorRT)."""
    runnable, skipped = [], []
    for name, entry in manifest["artifacts"].items():
        row = row_of_kind(str(entry.get("kind")))
        if row is None or "reference" in row.capabilities:
            continue
        if row.available():
            runnable.append(name)
        else:
            skipped.append(f"{name}: {row.missing}")
    return runnable, skipped
