import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from segdeploy.metrics import ConfusionMatrix, SmallObjectRecall, components


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


def _flood_fill_sizes(mask: np.ndarray, connectivity: int) -> list[int]:
    """Component sizes by a plain flood fill: what `components` must agree with."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)] if connectivity == 8 else []
    seen = np.zeros_like(mask, dtype=bool)
    sizes = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start], stack, size = True, [start], 0
        while stack:
            row, col = stack.pop()
            size += 1
            for dr, dc in steps:
                r, c = row + dr, col + dc
                if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    stack.append((r, c))
        sizes.append(size)
    return sorted(sizes)


@settings(max_examples=150, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    st.sampled_from([4, 8]),
)
def test_components_agree_with_flood_fill(mask: np.ndarray, connectivity: int) -> None:
    rows, starts, stops, label = components(mask, connectivity)
    sizes = np.bincount(label, weights=stops - starts).astype(int) if len(label) else np.zeros(0, int)
    assert sorted(sizes.tolist()) == _flood_fill_sizes(mask, connectivity)
    painted = np.zeros(mask.shape, bool)
    for row, start, stop in zip(rows, starts, stops):
        painted[row, start:stop] = True
    assert np.array_equal(painted, mask)


def test_diagonal_pixels_are_one_component_with_8_connectivity_two_with_4():
    mask = np.eye(3, dtype=bool)
    assert components(mask, 8)[3].max() == 0
    assert components(mask, 4)[3].max() == 2


def test_small_object_recall_counts_on_hand_made_masks():
    truth = np.zeros((10, 12), np.uint8)
    truth[0:2, 0:2] = 2  # weed, 4 px: found (3 of 4 predicted weed)
    truth[5, 5] = 2  # weed, 1 px: lost
    truth[3:5, 8:10] = 2  # weed, 4 px: exactly half predicted -> found
    truth[7:10, 0:8] = 1  # crop, 24 px: not small at max_area 20
    truth[0, 11] = 255  # ignored: no component
    prediction = np.zeros_like(truth)
    prediction[0:2, 0:2] = 2
    prediction[1, 1] = 0
    prediction[3, 8:10] = 2
    prediction[7:10, 0:8] = 1
    recall = SmallObjectRecall(3, max_area=20)
    recall.update(prediction, truth)
    assert recall.components.tolist() == [0, 0, 3]  # soil is one large component
    assert recall.found.tolist() == [0, 0, 2]
    result = recall.to_dict(["soil", "crop", "weed"])
    assert result["classes"]["weed"] == {"components": 3, "found": 2, "recall": pytest.approx(2 / 3)}
    assert np.isnan(result["classes"]["crop"]["recall"]) and result["max_area_px"] == 20


def test_dropping_small_blobs_shows_in_recall_not_in_miou():
    """A prediction that loses every isolated weed but keeps the large ones: mIoU barely moves."""
    rng = np.random.default_rng(0)
    truth = np.zeros((4, 120, 160), np.uint8)
    truth[:, 20:80, 20:140] = 2  # one large weed patch per image
    for image in truth:
        for row, col in zip(rng.integers(90, 116, 12), rng.integers(2, 156, 12)):
            image[row : row + 2, col : col + 2] = 2  # isolated 4 px weeds
    without_small = truth.copy()
    without_small[:, 85:, :] = 0
    scores = {}
    for name, prediction in (("perfect", truth), ("without small", without_small)):
        matrix, recall = ConfusionMatrix(3), SmallObjectRecall(3)
        matrix.update(prediction, truth)
        recall.update(prediction, truth)
        scores[name] = (matrix.iou()[2], recall.recall()[2])
    assert scores["perfect"] == (1.0, 1.0)
    assert scores["without small"][0] > 0.97  # weed IoU nearly unchanged
    assert scores["without small"][1] == 0.0  # every small weed lost
