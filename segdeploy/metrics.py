"""Segmentation metrics from a confusion matrix accumulated over a whole split."""

from __future__ import annotations

import numpy as np

from .disagreement import boundary_band


class ConfusionMatrix:
    """rows: ground truth, columns: prediction; pixels whose truth is `ignore_index` are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        valid = truth != self.ignore_index
        truth_v = truth[valid].astype(np.int64)
        pred_v = prediction[valid].astype(np.int64)
        if pred_v.size and (pred_v.min() < 0 or pred_v.max() >= self.num_classes):
            raise ValueError(f"prediction holds class {pred_v.max()} outside 0..{self.num_classes - 1}")
        flat = np.bincount(truth_v * self.num_classes + pred_v, minlength=self.num_classes**2)
        self.matrix += flat.reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both truth and prediction."""
        true_positive = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positive / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


class BoundaryErrors:
    """Errors within `width` px of a ground-truth class boundary, counted apart from interior errors:
    where architectures with coarse heads (FCN) and fine decoders (U-Net) differ most. Ignored pixels
    count in neither, but the edge of an ignored region is a boundary (Pascal VOC's 255 outlines)."""

    def __init__(self, width: int = 3, ignore_index: int = 255) -> None:
        self.width = width
        self.ignore_index = ignore_index
        self.pixels = {"boundary": 0, "interior": 0}
        self.errors = {"boundary": 0, "interior": 0}

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        valid = truth != self.ignore_index
        wrong = (prediction != truth) & valid
        band = boundary_band(truth, self.width)
        for region, where in (("boundary", band & valid), ("interior", ~band & valid)):
            self.pixels[region] += int(where.sum())
            self.errors[region] += int((wrong & where).sum())

    def error_rate(self, region: str) -> float:
        """Share of the region's pixels that are wrong (region: boundary or interior)."""
        return self.errors[region] / self.pixels[region] if self.pixels[region] else float("nan")

    def errors_on_boundary(self) -> float:
        """Share of all wrong pixels that lie in the boundary band."""
        total = self.errors["boundary"] + self.errors["interior"]
        return self.errors["boundary"] / total if total else float("nan")

    def to_dict(self) -> dict[str, object]:
        return {
            "width_px": self.width,
            **{
                region: {
                    "pixels": self.pixels[region],
                    "errors": self.errors[region],
                    "error_rate": self.error_rate(region),
                }
                for region in ("boundary", "interior")
            },
            "errors_on_boundary": self.errors_on_boundary(),
        }
