"""segdeploy compare: several models on the same images, mIoU and boundary vs interior error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..backends import open_all
from ..data.dataset import SegmentationSplit
from ..data.spec import DatasetSpec
from ..errors import SegdeployError
from ..files import atomic_path, refuse_overwrite, write_json
from ..metrics import BoundaryErrors, ConfusionMatrix, SmallObjectRecall
from ..parity import check_classes
from .compare_report import CompareReport, ModelScore
from .figures import compare_figure, figure_png
from .predict import segment


def _labels(paths: list[Path], recipes: list[str]) -> list[str]:
    """The models' recipe names; their paths instead when two share a recipe name."""
    return recipes if len(set(recipes)) == len(recipes) else [str(p) for p in paths]


def compare_models(
    artifacts: list[Path],
    spec: DatasetSpec,
    split: str = "val",
    num: int = 10,
    boundary_width: int = 3,
    log: Callable[[str], Any] = print,
    figure: Path | None = None,
    json_out: Path | None = None,
    force: bool = False,
) -> CompareReport:
    """Run every checkpoint or ONNX model on the first `num` images of `split`: mIoU, per-class IoU, the
    error within `boundary_width` px of a ground-truth boundary apart from the interior error, and the
    share of small ground-truth components found (metrics.SmallObjectRecall). With
    `figure`, a PNG of the masks side by side; with `json_out`, every figure as JSON (both refused before
    running when they exist, unless `force`)."""
    refuse_overwrite([p for p in (figure, json_out) if p is not None], force)
    if num < 1:
        raise SegdeployError(f"--num {num}: expected at least 1 image")
    if boundary_width < 1:
        raise SegdeployError(f"--boundary {boundary_width}: expected a band of 1 px or more")
    if not artifacts:
        raise SegdeployError("compare needs at least one checkpoint or ONNX model")
    with open_all(artifacts) as backends:
        for path, backend in zip(artifacts, backends):
            warning = check_classes(backend, spec, str(path))
            if warning:
                log(f"warning: {warning}")
        data = SegmentationSplit(spec, split)
        count = min(num, len(data))
        samples = [data[i] for i in range(count)]
        ids = data.ids[:count]
        labels = _labels(artifacts, [b.meta.recipe.name for b in backends])
        models = []
        for label, path, backend in zip(labels, artifacts, backends):
            log(f"compare: {label} ({path}) on {count} images of {spec.name}/{split}")
            matrix = ConfusionMatrix(spec.num_classes, spec.ignore_index)
            overall = BoundaryErrors(boundary_width, spec.ignore_index)
            small = SmallObjectRecall(spec.num_classes, ignore_index=spec.ignore_index)
            per_image, predicted = {}, []
            for sample_id, (frame, truth) in zip(ids, samples):
                prediction = segment(backend, frame)
                matrix.update(prediction, truth)
                overall.update(prediction, truth)
                small.update(prediction, truth)
                mine = BoundaryErrors(boundary_width, spec.ignore_index)
                mine.update(prediction, truth)
                per_image[sample_id] = mine.to_dict()
                predicted.append(prediction)
            recipe = backend.meta.recipe
            models.append(
                ModelScore(
                    label,
                    str(path),
                    recipe.architecture,
                    recipe.encoder,
                    matrix.miou(),
                    dict(zip(spec.class_names, matrix.iou().tolist())),
                    matrix.pixel_accuracy(),
                    overall.to_dict(),
                    per_image,
                    small.to_dict(spec.class_names),
                    predicted,
                )
            )
        report = CompareReport(
            spec.source, spec.name, split, ids, [s[0] for s in samples], [s[1] for s in samples], models, boundary_width
        )
    if figure is not None:
        with atomic_path(figure) as tmp:
            tmp.write_bytes(figure_png(compare_figure(report, spec.class_names, spec.colors)))
    if json_out is not None:
        write_json(json_out, report.to_dict())
    return report
