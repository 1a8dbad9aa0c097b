"""Volume-level scores: the metrics of :func:`~samia.metrics.segmentation_metrics` on ``(Z, Y, X)``
masks with ``(z, y, x)`` spacing, each slice's Dice along an axis, and the area under a Dice-vs-clicks
curve as the CVPR 2025 interactive 3D challenge computes it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samia.metrics._validation import as_mask_pair


def slice_dice(pred: np.ndarray, gt: np.ndarray, axis: int = 0) -> np.ndarray:
    """``(D,)`` float64: the Dice of each slice along ``axis`` (``D`` = slices on that axis); NaN
    where both masks are empty on the slice, 0 where exactly one is."""
    pred, gt = as_mask_pair(pred, gt)
    if pred.ndim != 3:
        raise ValueError(f"expected (Z, Y, X) masks, got shape {pred.shape}")
    others = tuple(a for a in range(3) if a != axis)
    overlap = np.count_nonzero(pred & gt, axis=others).astype(np.float64)
    total = (np.count_nonzero(pred, axis=others) + np.count_nonzero(gt, axis=others)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * overlap / total, np.nan)


def click_auc(values: Sequence[float]) -> float:
    """The area under a metric-vs-clicks curve: the trapezoid rule over the click predictions with
    one unit per click (``scipy.integrate.cumulative_trapezoid(values, arange(n))[-1]`` of
    ``CVPR25_iter_eval.py``, whose ``values`` are those of clicks 1..n, the box prediction left
    out); NaN for fewer than two values."""
    array = np.asarray(values, dtype=np.float64)
    if array.size < 2:
        return float("nan")
    return float(np.sum((array[1:] + array[:-1]) / 2.0))
