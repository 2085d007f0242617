"""Segmentation metrics from a confusion matrix accumulated over a whole split."""

from __future__ import annotations

import numpy as np


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
