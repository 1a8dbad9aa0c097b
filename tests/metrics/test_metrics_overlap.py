"""Confusion counts, Dice and IoU: hand-computed answers, empty rules, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samia.metrics import ConfusionCounts, confusion_counts, dice, dice_from_counts, iou, iou_from_counts


def _box(shape: tuple[int, ...], *slices: slice) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[slices] = True
    return mask


# (name, pred, gt, expected counts, dice, iou) -- all by hand.
CASES = [
    # 4x4 squares, the second shifted one pixel right: 4x3 overlap, one 4-pixel column each side.
    (
        "2d_squares_shifted_1px",
        _box((8, 8), slice(2, 6), slice(2, 6)),
        _box((8, 8), slice(2, 6), slice(3, 7)),
        ConfusionCounts(tp=12, fp=4, fn=4, tn=44),
        24 / 32,
        12 / 20,
    ),
    # 4x4x4 cubes shifted one voxel along x: 4x4x3 overlap, one 4x4 face each side.
    (
        "3d_cubes_shifted_1px",
        _box((6, 6, 7), slice(1, 5), slice(1, 5), slice(1, 5)),
        _box((6, 6, 7), slice(1, 5), slice(1, 5), slice(2, 6)),
        ConfusionCounts(tp=48, fp=16, fn=16, tn=252 - 80),
        96 / 128,
        48 / 80,
    ),
    # 5x5 square inside a concentric 9x9 square.
    (
        "2d_nested_squares",
        _box((11, 11), slice(3, 8), slice(3, 8)),
        _box((11, 11), slice(1, 10), slice(1, 10)),
        ConfusionCounts(tp=25, fp=0, fn=56, tn=121 - 81),
        50 / 106,
        25 / 81,
    ),
    (
        "identical",
        _box((5, 5), slice(0, 5), slice(0, 2)),
        _box((5, 5), slice(0, 5), slice(0, 2)),
        ConfusionCounts(tp=10, fp=0, fn=0, tn=15),
        1.0,
        1.0,
    ),
    (
        "disjoint",
        _box((5, 5), slice(0, 1), slice(0, 1)),
        _box((5, 5), slice(4, 5), slice(4, 5)),
        ConfusionCounts(tp=0, fp=1, fn=1, tn=23),
        0.0,
        0.0,
    ),
]


@pytest.mark.parametrize(
    ("name", "pred", "gt", "counts", "expected_dice", "expected_iou"), CASES, ids=[c[0] for c in CASES]
)
def test_hand_computed(name, pred, gt, counts, expected_dice, expected_iou) -> None:
    assert confusion_counts(pred, gt) == counts
    assert dice(pred, gt) == pytest.approx(expected_dice)
    assert iou(pred, gt) == pytest.approx(expected_iou)
    assert dice_from_counts(counts) == pytest.approx(expected_dice)
    assert iou_from_counts(counts) == pytest.approx(expected_iou)


@pytest.mark.parametrize(
    ("pred_empty", "gt_empty", "expected"),
    [(True, True, math.nan), (True, False, 0.0), (False, True, 0.0), (False, False, 1.0)],
)
def test_empty_rules(pred_empty: bool, gt_empty: bool, expected: float) -> None:
    full = _box((4, 4), slice(1, 3), slice(1, 3))
    empty = np.zeros((4, 4), dtype=bool)
    pred, gt = (empty if pred_empty else full), (empty if gt_empty else full)
    for value in (dice(pred, gt), iou(pred, gt)):
        assert (math.isnan(value) and math.isnan(expected)) or value == expected


def test_counts_are_python_ints() -> None:
    counts = confusion_counts(np.ones((3, 3), bool), np.eye(3, dtype=bool))
    assert all(type(v) is int for v in (counts.tp, counts.fp, counts.fn, counts.tn))


def test_integer_zero_one_masks_are_accepted() -> None:
    pred = _box((6, 6), slice(1, 4), slice(1, 4))
    gt = _box((6, 6), slice(2, 5), slice(2, 5))
    assert confusion_counts(pred.astype(np.uint8), gt.astype(np.int64)) == confusion_counts(pred, gt)


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6\)"):
        dice(np.zeros((4, 5), bool), np.zeros((4, 6), bool))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[0, 2], [1, 0]]), "only 0 and 1"),
        (np.array([[0, 255], [255, 0]], dtype=np.uint8), "only 0 and 1"),
        (np.array([[0.0, 1.0], [1.0, 0.0]]), "dtype float64"),
    ],
)
def test_non_binary_input_is_rejected(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iou(bad, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match=message):
        iou(np.zeros((2, 2), bool), bad)
