"""segdeploy report: one self-contained HTML page and a Markdown summary of an export folder's
artifacts and the parity and bench runs on them."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts.integrity import verify_export
from ..artifacts.manifest import read_manifest
from ..bench.runner import FORMAT as BENCH_FORMAT
from ..bench.runner import BenchReport
from ..data.spec import load_dataset_spec
from ..errors import SegdeployError
from ..files import read_json, refuse_overwrite, require_writable, write_atomic
from ..stored_parity import STORED
from .document import Document, Section, Text
from .report_html import render_html
from .report_markdown import render_markdown
from .report_sections import int8_section, latency_section, manifest_section, parity_section
from .worst import disagreement_panels, rank_images


@dataclass
class Runs:
    """The parity and bench JSON files found for a report."""

    parity: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    bench: list[tuple[Path, BenchReport]] = field(default_factory=list)


def find_runs(directory: Path, extra: list[Path]) -> Runs:
    """Parity and bench JSON in `directory` (other JSON there is skipped) and the `extra` files."""
    runs = Runs()
    for path in [*sorted(p for p in directory.glob("*.json") if p.name != "manifest.json"), *extra]:
        raw = read_json(path)
        if isinstance(raw, dict) and raw.get("format") == BENCH_FORMAT:
            runs.bench.append((path, BenchReport.from_dict(raw, str(path))))
        elif isinstance(raw, dict) and {"artifact_dir", "rows", "tolerance", "split"} <= raw.keys():
            runs.parity.append((path, raw))
        elif path in extra:
            raise SegdeployError(f"{path}: neither a parity JSON (segdeploy parity --json) nor a bench JSON")
    if not runs.parity and not runs.bench:
        raise SegdeployError(
            f"{directory}: no parity or bench JSON found; write them with 'segdeploy parity --json' and "
            "'segdeploy bench --json' into the folder, or pass them with --runs"
        )
    return runs


def worst_section(directory: Path, raw: dict[str, Any], data: Path | None, num: int) -> Section:
    section = Section(f"Where the artifacts disagree most ({raw['dataset']}/{raw['split']})")
    if raw["rows"][0]["backend"] == STORED:  # the reference is frames and outputs, no model to run again
        section.blocks.append(
            Text(
                "No images: this parity run compared against the export's stored reference; to show them, "
                "rerun segdeploy parity with --data where PyTorch is installed."
            )
        )
        return section
    ids = rank_images(raw, num)
    recorded = Path(raw["data"]) if raw.get("data") else None
    source = data or (recorded if recorded is not None and recorded.is_file() else None)
    if not ids or source is None:
        why = "has no per-image agreement (rerun segdeploy parity)" if not ids else "names no readable data set"
        section.blocks.append(Text(f"No images: the parity JSON {why}; pass --data DATA.yaml to show them."))
        return section
    grid, table = disagreement_panels(directory, raw, load_dataset_spec(source), ids)
    section.blocks += [
        Text(f"The {len(ids)} images of the split with the most pixels that disagree with the reference."),
        table,
        grid,
    ]
    return section


def build_report(
    directory: Path,
    data: Path | None = None,
    extra: list[Path] | None = None,
    num: int = 4,
    log: Callable[[str], Any] = print,
) -> Document:
    """The report of `directory` (an export folder) from its parity and bench JSON and `extra` ones;
    images where artifacts disagree most come from running them again on `data` (default: the data
    set the parity JSON names)."""
    if num < 0:
        raise SegdeployError(f"--num {num}: expected 0 or more images")
    manifest = read_manifest(directory)
    verify_export(directory)
    runs = find_runs(directory, extra or [])
    document = Document(
        f"segdeploy report: {manifest['model']['recipe']['name']}",
        f"{directory}, written {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
    )
    for path, raw in runs.parity:
        log(f"report: parity {path}")
        document.sections.append(parity_section(path, raw))
        if num:
            document.sections.append(worst_section(directory, raw, data, num))
    for path, bench in runs.bench:
        log(f"report: bench {path}")
        document.sections.append(latency_section(path, bench))
    int8 = int8_section(manifest)
    if int8 is not None:
        document.sections.append(int8)
    document.sections.append(manifest_section(manifest, runs.bench[0][1].machine if runs.bench else None))
    return document


def make_report(
    directory: Path,
    html: Path,
    data: Path | None = None,
    extra: list[Path] | None = None,
    num: int = 4,
    force: bool = False,
    log: Callable[[str], Any] = print,
) -> tuple[Path, Path]:
    """Build the report of `directory` and write `html` and the Markdown summary beside it (.md)."""
    markdown = html.with_suffix(".md")
    refuse_overwrite([html, markdown], force)
    require_writable(html.parent)  # a read-only export folder is found now, not after the report's work
    document = build_report(directory, data, extra, num, log)
    write_atomic(html, lambda tmp: tmp.write_text(render_html(document), encoding="utf-8"))
    write_atomic(markdown, lambda tmp: tmp.write_text(render_markdown(document, html.name), encoding="utf-8"))
    return html, markdown
