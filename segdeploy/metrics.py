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


def components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of a boolean (H, W) mask as horizontal runs: (row, start, stop) per run (stop
    exclusive, row-major order) and each run's component number 0..K-1. `connectivity` 8 joins diagonal
    neighbours, 4 only edge neighbours. numpy only: runs of adjacent rows that touch are joined, and the
    joins resolved by propagating the smallest run number with pointer jumping."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity {connectivity}: expected 4 or 8")
    width = mask.shape[1]
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    stops = np.nonzero(edges == -1)[1]
    count = len(rows)
    if count == 0:
        return rows, starts, stops, np.zeros(0, np.int64)
    key = width + 1  # a row's columns 0..width fit below the next row's keys
    reach = 1 if connectivity == 8 else 0  # how far past its ends a run touches the next row
    below = (rows + 1) * key
    first = np.searchsorted(rows * key + stops, below + starts - reach, side="right")
    last = np.searchsorted(rows * key + starts, below + stops + reach - 1, side="right")
    touching = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(count), touching)
    lower = np.repeat(first - np.cumsum(touching) + touching, touching) + np.arange(touching.sum())
    label = np.arange(count)
    while True:
        joined = np.minimum(label[upper], label[lower])
        new = label.copy()
        np.minimum.at(new, upper, joined)
        np.minimum.at(new, lower, joined)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    return rows, starts, stops, np.unique(label, return_inverse=True)[1].reshape(-1)


class SmallObjectRecall:
    """Per class, the share of small ground-truth components the prediction finds: connected regions of
    one class (8-connectivity) smaller than `max_area` px at the evaluated resolution, found when at least
    half their pixels are predicted as that class. Isolated weeds a model loses barely move mIoU; this
    shows them. Ignored pixels belong to no component."""

    def __init__(self, num_classes: int, max_area: int = 64, ignore_index: int = 255, connectivity: int = 8) -> None:
        self.num_classes = num_classes
        self.max_area = max_area
        self.ignore_index = ignore_index
        self.connectivity = connectivity
        self.components = np.zeros(num_classes, dtype=np.int64)
        self.found = np.zeros(num_classes, dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        """One image (H, W), or a batch (N, H, W) of them."""
        if truth.ndim == 3:
            for one_prediction, one_truth in zip(prediction, truth):
                self.update(one_prediction, one_truth)
            return
        for index in range(self.num_classes):
            self._count(index, prediction == index, truth == index)

    def _count(self, index: int, predicted: np.ndarray, truth: np.ndarray) -> None:
        rows, starts, stops, label = components(truth, self.connectivity)
        if not len(label):
            return
        hits_per_row = np.pad(np.cumsum(predicted, axis=1), ((0, 0), (1, 0)))
        area = np.bincount(label, weights=stops - starts)
        hits = np.bincount(label, weights=hits_per_row[rows, stops] - hits_per_row[rows, starts])
        small = area < self.max_area
        self.components[index] += int(small.sum())
        self.found[index] += int((small & (2 * hits >= area)).sum())

    def recall(self) -> np.ndarray:
        """Per class; NaN for a class with no small component."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.components > 0, self.found / np.maximum(self.components, 1), np.nan)

    def to_dict(self, names: list[str]) -> dict[str, object]:
        return {
            "max_area_px": self.max_area,
            "connectivity": self.connectivity,
            "classes": {
                name: {"components": int(c), "found": int(f), "recall": float(r)}
                for name, c, f, r in zip(names, self.components, self.found, self.recall())
            },
        }
