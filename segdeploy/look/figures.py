"""Pictures for report and compare: matplotlib figures and image panels, encoded in memory."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from ..meta import Color, colorize
from .compare_report import CompareReport


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot().close(figure)
    return buffer.getvalue()


def image_bytes(picture: np.ndarray | Image.Image, fmt: str = "PNG") -> bytes:
    """An RGB array or PIL image encoded as PNG (exact: masks, maps) or JPEG (photos)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 88} if fmt == "JPEG" else {"optimize": True}))
    return buffer.getvalue()


def iou_bars(rows: list[dict[str, Any]]) -> Any:
    """Per-class IoU, one bar per artifact in each class group (rows: parity JSON rows)."""
    plt = pyplot()
    names = list(rows[0]["iou"])
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=110)
    width = 0.8 / len(rows)
    for index, row in enumerate(rows):
        xs = np.arange(len(names)) + (index - (len(rows) - 1) / 2) * width
        values = [row["iou"][n] for n in names]  # None (JSON's NaN): a class absent from truth and output
        bars = axes.bar(
            xs, [np.nan if v is None else v for v in values], width, label=f"{row['artifact']} ({row['precision']})"
        )
        labels = ["-" if v is None or v != v else f"{v:.3f}" for v in values]
        axes.bar_label(bars, labels=labels, fontsize=6, rotation=90, padding=2)
    axes.set_xticks(np.arange(len(names)), names)
    axes.set_ylabel("IoU")
    axes.set_ylim(0, 1.12)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=7, ncol=2, loc="upper right")
    axes.set_title("per-class IoU per artifact")
    figure.tight_layout()
    return figure


def _legend(figure: Any, names: list[str], colors: list[Color]) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=(c[0] / 255, c[1] / 255, c[2] / 255), edgecolor="grey", label=n) for n, c in zip(names, colors)
    ]
    figure.legend(handles=handles, loc="lower center", ncol=len(names), fontsize=9, frameon=False)


def compare_figure(report: CompareReport, names: list[str], colors: list[Color], panel_inches: float = 2.4) -> Any:
    """Rows of images, columns input | ground truth | each model's mask; under each mask the image's
    pixel error with its boundary and interior error rates."""
    plt = pyplot()
    titles = ["input", "ground truth", *(m.label for m in report.models)]
    height, width = report.frames[0].shape[:2]
    panel_height = panel_inches * height / width
    figure, axes = plt.subplots(
        len(report.ids),
        len(titles),
        figsize=(panel_inches * len(titles), (panel_height + 0.35) * len(report.ids) + 0.6),
        dpi=100,
        squeeze=False,
    )
    for row, sample_id in enumerate(report.ids):
        pictures = [report.frames[row], colorize(report.truths[row], colors)]
        pictures += [colorize(m.labels[row], colors) for m in report.models]
        for column, picture in enumerate(pictures):
            axes[row, column].imshow(picture, interpolation="nearest")
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            if row == 0:
                axes[row, column].set_title(titles[column], fontsize=9)
        axes[row, 0].set_ylabel(sample_id, fontsize=9)
        for column, model in enumerate(report.models, start=2):
            split = model.per_image[sample_id]
            wrong = split["boundary"]["errors"] + split["interior"]["errors"]
            total = split["boundary"]["pixels"] + split["interior"]["pixels"]
            axes[row, column].set_xlabel(
                f"err {wrong / max(total, 1):.1%}: boundary {split['boundary']['error_rate']:.0%}, "
                f"interior {split['interior']['error_rate']:.1%}",
                fontsize=7,
            )
    _legend(figure, names, colors)
    figure.tight_layout(rect=(0, 0.4 / figure.get_figheight(), 1, 1))
    return figure
