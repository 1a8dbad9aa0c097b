"""Volume metrics: (z, y, x) spacing applied to the right axes, per-slice Dice, and the click AUC."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from samia.data.phantoms import ellipsoid_mask
from samia.metrics import click_auc, segmentation_metrics, slice_dice

SPACING = (3.0, 1.25, 0.5)  # a different size on every axis: a swap of any two shows


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_shift_along_one_axis_is_measured_in_that_axis_mm(axis) -> None:
    gt = np.zeros((24, 30, 36), dtype=bool)
    gt[6:18, 8:22, 10:26] = True
    pred = np.roll(gt, 2, axis=axis)
    metrics = segmentation_metrics(pred, gt, SPACING)
    assert metrics["hd95"] == pytest.approx(2 * SPACING[axis])  # the box's faces move by 2 voxels
    others = [s for a, s in enumerate(SPACING) if a != axis]
    assert all(abs(metrics["hd95"] - 2 * s) > 0.4 for s in others)


def test_3d_dice_counts_voxels_and_distances_use_mm() -> None:
    gt = ellipsoid_mask((20, 40, 40), (10, 20, 20), (6, 12, 12))
    pred = ellipsoid_mask((20, 40, 40), (10, 20, 21), (6, 12, 12))
    metrics = segmentation_metrics(pred, gt, SPACING)
    overlap = np.count_nonzero(pred & gt)
    assert metrics["dice"] == pytest.approx(2 * overlap / (pred.sum() + gt.sum()))
    assert metrics["hd95"] <= 2 * 0.5 + 1e-9  # a one-voxel shift along x (0.5 mm) is all there is
    assert metrics["nsd"] == pytest.approx(1.0)  # within 2 mm everywhere


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_dice_is_each_planes_dice_along_the_axis(axis) -> None:
    rng = np.random.default_rng(4)
    gt = rng.random((6, 7, 8)) < 0.3
    pred = rng.random((6, 7, 8)) < 0.3
    pred_empty = pred.copy()
    np.moveaxis(pred_empty, axis, 0)[2] = False
    np.moveaxis(gt, axis, 0)[2] = False
    values = slice_dice(pred_empty, gt, axis)
    for index in range(gt.shape[axis]):
        p, g = np.take(pred_empty, index, axis=axis), np.take(gt, index, axis=axis)
        if not p.any() and not g.any():
            assert np.isnan(values[index])
        else:
            assert values[index] == pytest.approx(2 * np.count_nonzero(p & g) / (p.sum() + g.sum()))
    assert np.isnan(values[2])


def test_click_auc_is_the_challenges_cumulative_trapezoid() -> None:
    dice = [0.52, 0.61, 0.7, 0.69, 0.8]
    expected = integrate.cumulative_trapezoid(np.array(dice), np.arange(len(dice)))[-1]
    assert click_auc(dice) == pytest.approx(expected)
    assert np.isnan(click_auc([0.5]))
