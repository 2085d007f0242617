"""Parity without PyTorch: every artifact of an export against the reference its export stored
(reference.npz: frames and PyTorch's FP32 outputs on them), and the choice between that reference and a
PyTorch run over a data split (parity.py). Imports no torch."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np

from .artifacts.reference import Reference, read_reference
from .backends import BackendOptions
from .data.dataset import SegmentationSplit
from .data.spec import DatasetSpec
from .disagreement import save_disagreement as save_disagreement_map
from .errors import SegdeployError
from .evaluate import batches
from .files import write_json
from .metrics import ConfusionMatrix
from .parity import (
    ParityOptions,
    ParityReport,
    ParityRow,
    Tally,
    check_classes,
    open_runnable,
    parity_row,
    prepare_run,
    run_parity,
)

STORED = "stored"  # the --reference choice, and the backend of a stored reference's row in the report
REFERENCES = ("pytorch", STORED)


def torch_installed() -> bool:
    """Whether PyTorch can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def choose_reference(requested: str | None, spec: DatasetSpec | None) -> str:
    """'pytorch' or 'stored': the one `requested`, else PyTorch over the data split when a data set is
    given and PyTorch is installed, else the export's stored reference."""
    if requested is None:
        return "pytorch" if spec is not None and torch_installed() else STORED
    if requested not in REFERENCES:
        raise SegdeployError(f"--reference '{requested}': choose {' or '.join(REFERENCES)}")
    if requested == "pytorch" and spec is None:
        raise SegdeployError("--reference pytorch needs --data: the split PyTorch runs over")
    if requested == "pytorch" and not torch_installed():
        raise SegdeployError("--reference pytorch: PyTorch is not installed here; use --reference stored")
    return requested


def check_parity(
    artifact_dir: Path,
    spec: DatasetSpec | None = None,
    split: str | None = None,
    reference: str | None = None,
    options: ParityOptions | None = None,
) -> ParityReport:
    """Parity against the reference `choose_reference` picks: PyTorch over `split` [val] of `spec`
    (run_parity), or the stored one (run_stored_parity); run as `options` say (ParityOptions)."""
    if choose_reference(reference, spec) == "pytorch":
        assert spec is not None  # choose_reference picks PyTorch only with a data set
        return run_parity(artifact_dir, spec, split or "val", options)
    return run_stored_parity(artifact_dir, spec, split, options)


def run_stored_parity(
    artifact_dir: Path,
    spec: DatasetSpec | None = None,
    split: str | None = None,
    options: ParityOptions | None = None,
) -> ParityReport:
    """Every ONNX model and engine in `artifact_dir` against its stored reference, as `options` say
    (ParityOptions): pixel agreement, max |logit difference| (FP32 logits stored as float16: the tolerance's
    relative part grows by FLOAT16_STORAGE_RTOL) and mIoU against the labels, from `spec` when given (the
    reference's frames must come from its data set), else the stored ones; no labels (random frames): no mIoU."""
    run = options or ParityOptions()
    manifest, runnable, skipped = prepare_run(artifact_dir, run)
    with contextlib.ExitStack() as opened:
        artifacts, graphs = open_runnable(
            opened, artifact_dir, runnable, BackendOptions(device=run.device), run.backends
        )
        meta = artifacts[0].meta  # every artifact of an export carries the same (its file's sha256 checked)
        reference = read_reference(artifact_dir, manifest, meta.num_classes)
        origin = reference.origin
        if split is not None and split != origin.get("split"):
            raise SegdeployError(f"--split {split}: the stored reference holds {reference.describe()['frames']}")
        warnings = [w for w in (check_classes(backend, spec) for backend in artifacts) if w] if spec else []
        labels = reference.labels if spec is None else _dataset_labels(spec, reference, warnings)
        ignore_index = int(origin.get("ignore_index", 255)) if spec is None else spec.ignore_index
        masks = np.full(reference.classes.shape, ignore_index) if labels is None else labels
        tolerance = reference.logit_tolerance(meta.recipe.tolerance.logits())
        tallies = [Tally(backend, meta.num_classes, ignore_index, tolerance) for backend in artifacts]
        truth = ConfusionMatrix(meta.num_classes, ignore_index)
        for start in range(0, len(reference.frames), run.batch_size):
            part = slice(start, start + run.batch_size)
            frames, classes, ids = reference.frames[part], reference.classes[part], reference.ids[part]
            logits = None if reference.logits is None else reference.logits[part].astype(np.float32)
            truth.update(classes, masks[part])
            for tally in tallies:
                output = tally.add(tally.backend.run(frames), logits, classes, masks[part], ids)
                if run.save_disagreement is not None:
                    for frame, sample_id, expected, got in zip(frames, ids, classes, output):
                        save_disagreement_map(
                            run.save_disagreement, tally.backend.label, sample_id, frame, expected, got
                        )
    names, gate = meta.class_names, meta.recipe.tolerance
    first = ParityRow(STORED, reference.path.name, "fp32", truth.miou(), dict(zip(names, truth.iou().tolist())))
    where = "none (random frames): no mIoU" if labels is None else spec.source if spec else "stored with the frames"
    report = ParityReport(
        str(artifact_dir),
        str(origin.get("dataset", "random frames")),
        str(origin.get("split", "-")),
        len(reference.frames),
        dataclasses.asdict(gate),
        [first, *(parity_row(t, truth, names, gate) for t in tallies)],
        "" if spec is None else spec.source,
        skipped,
        warnings,
        {**reference.describe(), "labels": where},
    )
    for row, graph in zip(report.rows, [reference.path.name, *graphs]):
        row.graph = graph
    if run.json_out is not None:
        write_json(run.json_out, report.to_dict())
    return report


def _dataset_labels(spec: DatasetSpec, reference: Reference, warnings: list[str]) -> np.ndarray | None:
    """The masks `spec` has for the reference's frames (padded as the frames are), or the stored labels
    with a warning when the frames are random."""
    origin = reference.origin
    if origin.get("source") != "dataset":
        warnings.append(f"{spec.source}: the stored reference's frames are random; the data set has no labels for them")
        return reference.labels
    data = SegmentationSplit(spec, str(origin["split"]))
    wanted = [str(i) for i in origin["ids"]]
    missing = [i for i in wanted if i not in data.ids]
    if missing:
        raise SegdeployError(
            f"{spec.source}: split '{data.split}' has no image {missing[0]}; the stored reference's frames are "
            f"{reference.describe()['frames']}"
        )
    _, masks = next(batches(data, len(wanted), indices=[data.ids.index(i) for i in wanted]))
    if masks.shape != reference.frames.shape[:3]:
        raise SegdeployError(
            f"{spec.source}: masks of {', '.join(wanted)} are {masks.shape[1]}x{masks.shape[2]} after its resize, "
            f"the stored reference's frames {reference.frames.shape[1]}x{reference.frames.shape[2]}"
        )
    return masks
