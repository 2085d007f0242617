"""A comparison with its files: the figure of the masks side by side and the JSON of every figure,
refused before running when they would overwrite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.spec import load_dataset_spec
from ..files import atomic_path, refuse_overwrite, write_json
from .compare import CompareReport, compare_models
from .figures import compare_figure, figure_png


def compare_to_files(
    artifacts: list[Path],
    data: Path,
    split: str = "val",
    num: int = 10,
    boundary_width: int = 3,
    figure: Path = Path("compare.png"),
    json_out: Path | None = None,
    force: bool = False,
    log: Callable[[str], Any] = print,
) -> CompareReport:
    """`compare_models` on the data set YAML `data`, then the PNG `figure` and, with `json_out`, the JSON."""
    refuse_overwrite([figure, *([json_out] if json_out else [])], force)
    spec = load_dataset_spec(data)
    result = compare_models(artifacts, spec, split, num, boundary_width, log=log)
    with atomic_path(figure) as tmp:
        tmp.write_bytes(figure_png(compare_figure(result, spec.class_names, spec.colors)))
    if json_out is not None:
        write_json(json_out, result.to_dict())
    return result
