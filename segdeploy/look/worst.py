"""The images where an export folder's artifacts disagree most with the reference, shown side by side."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..backends import open_backend
from ..backends.table import backend_choice
from ..data.dataset import SegmentationSplit
from ..data.spec import DatasetSpec
from ..disagreement import boundary_band, disagreement_map
from ..errors import SegdeployError
from ..meta import colorize
from ..parity import check_classes
from .document import PanelGrid, Picture, Table
from .figures import image_bytes
from .predict import segment


def rank_images(parity: dict[str, Any], num: int) -> list[str]:
    """Ids of the `num` images with the most disagreeing pixels, summed over the non-reference rows."""
    agreements = [row.get("image_agreement") or {} for row in parity["rows"][1:]]
    ids = sorted({i for a in agreements for i in a})
    disagreement = {i: sum(1.0 - a.get(i, 1.0) for a in agreements) for i in ids}
    return sorted(ids, key=lambda i: (-disagreement[i], i))[:num]


def _reopen(directory: Path, row: dict[str, Any]) -> Any:
    """A parity row's file with the backend that ran it (parity JSON before the backend choice: the file
    and its default backend)."""
    choice = backend_choice(row["choice"]) if row.get("choice") else {}
    return open_backend(directory / (row.get("graph") or row["artifact"]), **choice)


def _png(picture: Any, caption: str = "") -> Picture:
    return Picture(image_bytes(picture), "image/png", caption)


def disagreement_panels(
    directory: Path, parity: dict[str, Any], spec: DatasetSpec, ids: list[str]
) -> tuple[PanelGrid, Table]:
    """Per image: input | ground truth | reference | each artifact, and under each artifact the map of
    where it disagrees with the reference (yellow on a boundary, red inside a region)."""
    with contextlib.ExitStack() as opened:
        backends = [opened.enter_context(_reopen(directory, row)) for row in parity["rows"]]
        for row, backend in zip(parity["rows"], backends):
            check_classes(backend, spec, str(directory / (row.get("graph") or row["artifact"])))
        colors = backends[0].meta.colors
        split = SegmentationSplit(spec, parity["split"])
        names = [row["artifact"] for row in parity["rows"]]
        grid_rows: list[tuple[str, list[Picture | None]]] = []
        table_rows = []
        for sample_id in ids:
            if sample_id not in split.ids:
                raise SegdeployError(
                    f"{spec.source}: image '{sample_id}' of the parity run is not in split {split.split}"
                )
            frame, truth = split[split.ids.index(sample_id)]
            reference, *others = [segment(b, frame) for b in backends]
            band = boundary_band(reference)
            cells = []
            masks = [_png(colorize(reference, colors), "reference")]
            for labels in others:
                differ = labels != reference
                on_boundary = f"{(differ & band).sum() / differ.sum():.0%} on boundary" if differ.any() else "identical"
                cells.append(f"{1 - differ.mean():.3%} ({on_boundary})")
                masks.append(_png(colorize(labels, colors), f"agreement {1 - differ.mean():.3%}"))
            inputs = [
                Picture(image_bytes(frame, "JPEG"), "image/jpeg", "input"),
                _png(colorize(truth, colors), "truth"),
            ]
            grid_rows.append((sample_id, [*inputs, *masks]))
            maps = [_png(disagreement_map(frame, reference, labels), "disagreement") for labels in others]
            grid_rows.append(("", [None, None, None, *maps]))
            table_rows.append([sample_id, *cells])
        grid = PanelGrid(
            ["input", "ground truth", f"{names[0]} (reference)", *names[1:]],
            grid_rows,
            "Under each artifact: where it disagrees with the reference, on the frame in grey; yellow within "
            "3 px of a class boundary, red inside a region. Hover over a picture to enlarge it.",
        )
        table = Table(["image", *(f"{n}: agreement with {names[0]}" for n in names[1:])], table_rows)
        return grid, table
