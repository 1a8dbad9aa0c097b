"""Our metrics against MONAI 1.6.1 on random blobs, 2D and 3D (NSD: the boundary-pixel variant)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

monai_metrics = pytest.importorskip("monai.metrics")

from samia.metrics import segmentation_metrics  # noqa: E402

TOLERANCES_MM = (1.0, 2.0)


def _pair(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth and a prediction that overlaps it imperfectly (smoothed noise shared in part)."""
    rng = np.random.default_rng(seed)
    fraction = rng.uniform(0.05, 0.6)  # of the image covered by the ground truth
    sigma = min(shape) / 8
    base = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma / 2)
    gt = base > np.quantile(base, 1 - fraction)
    pred_field = base + rng.uniform(0.2, 1.0) * noise * base.std() / noise.std()
    pred = pred_field > np.quantile(pred_field, 1 - fraction * rng.uniform(0.7, 1.3))
    return pred, gt


def _monai(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """MONAI's values for one pred/gt pair, given as (B=1, C=1, *spatial) tensors."""
    p = torch.from_numpy(pred)[None, None].float()
    g = torch.from_numpy(gt)[None, None].float()
    values = {
        "dice": monai_metrics.compute_dice(p, g, include_background=True).item(),
        "iou": monai_metrics.compute_iou(p, g, include_background=True).item(),
        "hd95": monai_metrics.compute_hausdorff_distance(
            p, g, include_background=True, percentile=95, spacing=spacing
        ).item(),
        "assd": monai_metrics.compute_average_surface_distance(
            p, g, include_background=True, symmetric=True, spacing=spacing
        ).item(),
    }
    for tolerance in TOLERANCES_MM:
        values[f"nsd@{tolerance}"] = monai_metrics.compute_surface_dice(
            p, g, class_thresholds=[tolerance], include_background=True, spacing=spacing, use_subvoxels=False
        ).item()
    return values


def _ours(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    values = {}
    for tolerance in TOLERANCES_MM:
        result = segmentation_metrics(pred, gt, spacing, nsd_tolerance_mm=tolerance, nsd_variant="boundary_pixels")
        values[f"nsd@{tolerance}"] = result["nsd"]
    values.update({name: result[name] for name in ("dice", "iou", "hd95", "assd")})
    return values


def _assert_agree(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> None:
    ours = _ours(pred, gt, spacing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's deprecation notices
        theirs = _monai(pred, gt, spacing)
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, rel=1e-5, abs=1e-5), name


# (seed, shape, spacing, margin): a margin of background keeps the blobs off the image border;
# without one they touch it. The spacings give no boundary distance exactly equal to a tolerance:
# such a tie would be decided by floating-point rounding, which differs between MONAI's KD-tree
# and scipy's EDT.
CASES = [(seed, (48, 56), (0.7, 0.9), 4 * (seed % 2)) for seed in range(12)] + [
    (100 + seed, (14, 24, 28), (2.5, 0.7, 0.9), 2 * (seed % 2)) for seed in range(8)
]


@pytest.mark.parametrize(("seed", "shape", "spacing", "margin"), CASES)
def test_random_blobs_agree_with_monai(seed: int, shape, spacing, margin: int) -> None:
    pred, gt = (np.pad(mask, margin) for mask in _pair(seed, shape))
    assert pred.any() and gt.any()
    _assert_agree(pred, gt, spacing)


def _at(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


# Masks touching or cut by the image border, where MONAI's crop pads with background.
S = (12, 14)
BORDER_CASES = [
    ("whole_image_vs_half", np.ones(S, bool), _at(S, slice(None), slice(0, 7))),
    ("corner_blocks", _at(S, slice(0, 5), slice(0, 6)), _at(S, slice(0, 6), slice(0, 4))),
    ("edge_line_vs_band", _at(S, slice(11, 12), slice(None)), _at(S, slice(9, 12), slice(None))),
    ("opposite_borders", _at(S, slice(None), slice(0, 2)), _at(S, slice(None), slice(11, 14))),
]


@pytest.mark.parametrize(("name", "pred", "gt"), BORDER_CASES, ids=[c[0] for c in BORDER_CASES])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.7, 1.3)])
def test_border_objects_agree_with_monai(name: str, pred: np.ndarray, gt: np.ndarray, spacing) -> None:
    _assert_agree(pred, gt, spacing)


def test_border_objects_agree_with_monai_3d() -> None:
    gt = np.zeros((6, 10, 12), bool)
    gt[:, :4, :] = True  # cut by five faces of the volume
    pred = np.zeros_like(gt)
    pred[1:, :5, 2:] = True
    spacing = (2.5, 0.7, 0.9)
    _assert_agree(pred, gt, spacing)
