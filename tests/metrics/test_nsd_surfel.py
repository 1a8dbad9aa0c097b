"""The reported NSD is the published one: DeepMind ``surface-distance``'s surfel NSD.

samia calls DeepMind's package (the code MedSAM's and the CVPR 2024/2025 challenges' evaluation
scripts call); the independent reference here is MONAI's own implementation of that definition,
``compute_surface_dice(use_subvoxels=True)``, to 1e-6. Spacings are chosen so that no distance
equals a tolerance exactly: such ties are decided by floating-point rounding, differently in the
two implementations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_surface_dice
from scipy import ndimage

from samia.metrics import segmentation_metrics, surfel_nsd


def _reference_nsd(pred: np.ndarray, gt: np.ndarray, spacing, tolerance: float) -> float:
    """MONAI's surfel NSD of one pair, as (B=1, C=1, *spatial) tensors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's deprecation notices
        value = compute_surface_dice(
            torch.from_numpy(pred)[None, None],
            torch.from_numpy(gt)[None, None],
            class_thresholds=[tolerance],
            include_background=True,
            spacing=list(spacing),
            use_subvoxels=True,
        )
    return float(value.item())


def _blobs(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sigma = min(shape) / 6
    base = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma / 2)
    gt = base > np.quantile(base, 1 - rng.uniform(0.1, 0.5))
    field = base + rng.uniform(0.2, 1.0) * noise * base.std() / noise.std()
    pred = field > np.quantile(field, 1 - gt.mean() * rng.uniform(0.7, 1.3))
    return pred, gt


# Anisotropic spacings, in-plane too (a swapped (y, x) spacing changes the answer).
CASES = [(seed, (40, 52), (0.7, 1.3), tol) for seed in range(6) for tol in (1.0, 2.0)] + [
    (50 + seed, (12, 20, 24), (2.5, 0.8, 1.1), tol) for seed in range(4) for tol in (1.0, 2.0)
]


@pytest.mark.parametrize(("seed", "shape", "spacing", "tolerance"), CASES)
def test_surfel_nsd_matches_monai_subvoxels(seed: int, shape, spacing, tolerance: float) -> None:
    pred, gt = _blobs(seed, shape)
    expected = _reference_nsd(pred, gt, spacing, tolerance)
    assert surfel_nsd(pred, gt, spacing, tolerance) == pytest.approx(expected, abs=1e-6)
    assert segmentation_metrics(pred, gt, spacing, tolerance)["nsd"] == pytest.approx(expected, abs=1e-6)


def test_objects_on_the_image_border_match_monai_subvoxels() -> None:
    gt = np.zeros((12, 14), bool)
    gt[:, :5] = True
    pred = np.zeros_like(gt)
    pred[2:, :7] = True
    for spacing in [(0.9, 1.1), (0.7, 1.3)]:
        assert surfel_nsd(pred, gt, spacing, 1.0) == pytest.approx(_reference_nsd(pred, gt, spacing, 1.0), abs=1e-6)
    volume_gt = np.zeros((6, 10, 12), bool)
    volume_gt[:, :4, :] = True
    volume_pred = np.zeros_like(volume_gt)
    volume_pred[1:, :5, 2:] = True
    spacing3 = (2.5, 0.7, 0.9)
    expected = _reference_nsd(volume_pred, volume_gt, spacing3, 2.0)
    assert surfel_nsd(volume_pred, volume_gt, spacing3, 2.0) == pytest.approx(expected, abs=1e-6)


def test_surfel_and_boundary_pixel_nsd_differ_on_a_simple_shape() -> None:
    """The reason the variant matters: a disk against a larger, shifted disk."""
    yy, xx = np.mgrid[:60, :60]
    gt = (yy - 30) ** 2 + (xx - 30) ** 2 < 15**2
    pred = (yy - 30) ** 2 + (xx - 31) ** 2 < 13**2
    spacing = (0.9, 1.1)
    surfel = segmentation_metrics(pred, gt, spacing, 1.0)["nsd"]
    pixels = segmentation_metrics(pred, gt, spacing, 1.0, nsd_variant="boundary_pixels")["nsd"]
    assert surfel == pytest.approx(_reference_nsd(pred, gt, spacing, 1.0), abs=1e-6)
    assert abs(surfel - pixels) > 0.05


def test_empty_rules() -> None:
    empty = np.zeros((8, 8), bool)
    full = np.zeros((8, 8), bool)
    full[2:5, 2:5] = True
    assert np.isnan(surfel_nsd(empty, empty, (1.0, 1.0)))
    assert surfel_nsd(full, empty, (1.0, 1.0)) == 0.0
    assert surfel_nsd(empty, full, (1.0, 1.0)) == 0.0


def test_cvpr24_rule_zeroes_nsd_at_low_dice_only_when_asked() -> None:
    gt = np.zeros((40, 40), bool)
    gt[10:30, 10:30] = True
    pred = np.zeros_like(gt)
    pred[10:30, 28:34] = True  # Dice 0.18, NSD > 0 (edges within 2 mm)
    measured = segmentation_metrics(pred, gt, (1.0, 1.0), 2.0)
    assert measured["dice"] <= 0.2 and measured["nsd"] > 0
    assert segmentation_metrics(pred, gt, (1.0, 1.0), 2.0, nsd_zero_at_dice=0.2)["nsd"] == 0.0
    good = np.roll(gt, 1, axis=0)
    assert segmentation_metrics(good, gt, (1.0, 1.0), 2.0, nsd_zero_at_dice=0.2)["nsd"] == pytest.approx(
        segmentation_metrics(good, gt, (1.0, 1.0), 2.0)["nsd"]
    )
