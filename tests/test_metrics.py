import numpy as np
import pytest

from segdeploy.metrics import ConfusionMatrix


def test_miou_from_accumulated_confusion_not_per_image_mean():
    matrix = ConfusionMatrix(2)
    matrix.update(np.array([[0, 0, 1, 1]]), np.array([[0, 0, 1, 1]]))  # perfect on image 1
    matrix.update(np.array([[0, 0, 0, 0]]), np.array([[0, 0, 0, 1]]))  # misses one class-1 pixel
    iou = matrix.iou()
    assert iou[0] == pytest.approx(5 / 6)  # tp 5, union 5 + 1
    assert iou[1] == pytest.approx(2 / 3)
    assert matrix.miou() == pytest.approx((5 / 6 + 2 / 3) / 2)


def test_ignore_index_and_absent_classes():
    matrix = ConfusionMatrix(3, ignore_index=255)
    matrix.update(np.array([0, 1, 2]), np.array([0, 255, 255]))
    iou = matrix.iou()
    assert iou[0] == 1.0 and np.isnan(iou[1]) and np.isnan(iou[2])
    assert matrix.matrix.sum() == 1


def test_prediction_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        ConfusionMatrix(2).update(np.array([3]), np.array([0]))
