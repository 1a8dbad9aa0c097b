"""segmentation_metrics (all metrics of one case) and MetricAccumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from samia.metrics import (
    METRIC_NAMES,
    MetricAccumulator,
    assd,
    dice,
    hd95,
    iou,
    nsd,
    segmentation_metrics,
)


def _square(shape: tuple[int, int], top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


PRED = _square((20, 20), 4, 4, 8)
GT = _square((20, 20), 5, 6, 8)
SPACING = (0.8, 1.1)


def test_keys_and_counts() -> None:
    values = segmentation_metrics(PRED, GT, SPACING)
    assert set(values) == {*METRIC_NAMES, "tp", "fp", "fn", "gt_area", "pred_area"}
    assert METRIC_NAMES == ("dice", "iou", "hd95", "assd", "nsd")
    # 8x8 squares offset by (1, 2): overlap 7x6.
    assert (values["tp"], values["fp"], values["fn"]) == (42, 22, 22)
    assert (values["gt_area"], values["pred_area"]) == (64, 64)
    assert all(type(values[name]) is float for name in METRIC_NAMES)
    assert all(type(values[name]) is int for name in ("tp", "fp", "fn", "gt_area", "pred_area"))


@pytest.mark.parametrize("tolerance", [1.0, 2.0])
def test_agrees_with_the_single_metrics(tolerance: float) -> None:
    values = segmentation_metrics(PRED, GT, SPACING, nsd_tolerance_mm=tolerance)
    pixels = segmentation_metrics(PRED, GT, SPACING, nsd_tolerance_mm=tolerance, nsd_variant="boundary_pixels")
    assert values["dice"] == dice(PRED, GT)
    assert values["iou"] == iou(PRED, GT)
    assert values["hd95"] == hd95(PRED, GT, SPACING)
    assert values["assd"] == assd(PRED, GT, SPACING)
    assert values["nsd"] == nsd(PRED, GT, SPACING, tolerance_mm=tolerance)
    assert pixels["nsd"] == nsd(PRED, GT, SPACING, tolerance, variant="boundary_pixels")


def test_distance_maps_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    edt = ndimage.distance_transform_edt

    def counting_edt(*args, **kwargs):
        calls.append(args[0].shape)
        return edt(*args, **kwargs)

    monkeypatch.setattr(ndimage, "distance_transform_edt", counting_edt)
    segmentation_metrics(PRED, GT, SPACING, nsd_variant="boundary_pixels")
    # One transform per direction, on the crop (union box 9x10, padded by 1), never on the image.
    assert calls == [(11, 12), (11, 12)]


def test_accumulator_means_and_nan_counts() -> None:
    accumulator = MetricAccumulator(nsd_tolerance_mm=1.0)
    empty = np.zeros((20, 20), bool)
    cases = [(PRED, GT), (GT, GT), (empty, empty), (PRED, empty)]
    per_case = [accumulator.update(pred, gt, SPACING) for pred, gt in cases]
    assert per_case[0] == segmentation_metrics(PRED, GT, SPACING, nsd_tolerance_mm=1.0)
    summary = accumulator.aggregate()

    diagonal = math.hypot(20 * 0.8, 20 * 1.1)
    first = per_case[0]
    # Both-empty case: NaN everywhere, counted, left out of the means; one-empty case: 0 / diagonal.
    expected = {
        "dice": (first["dice"] + 1.0 + 0.0) / 3,
        "iou": (first["iou"] + 1.0 + 0.0) / 3,
        "nsd": (first["nsd"] + 1.0 + 0.0) / 3,
        "hd95": (first["hd95"] + 0.0 + diagonal) / 3,
        "assd": (first["assd"] + 0.0 + diagonal) / 3,
    }
    for name in METRIC_NAMES:
        assert summary[name] == pytest.approx(expected[name]), name
        assert summary[f"n_nan_{name}"] == 1
    assert summary["n_cases"] == 4


def test_accumulator_reset_and_empty_aggregate() -> None:
    accumulator = MetricAccumulator()
    accumulator.update(PRED, GT, SPACING)
    accumulator.reset()
    summary = accumulator.aggregate()
    assert summary["n_cases"] == 0
    assert all(math.isnan(summary[name]) and summary[f"n_nan_{name}"] == 0 for name in METRIC_NAMES)


def test_accumulator_only_nan_cases() -> None:
    accumulator = MetricAccumulator()
    empty = np.zeros((4, 4, 4), bool)
    accumulator.update(empty, empty, (1.0, 1.0, 1.0))
    summary = accumulator.aggregate()
    assert all(math.isnan(summary[name]) and summary[f"n_nan_{name}"] == 1 for name in METRIC_NAMES)
