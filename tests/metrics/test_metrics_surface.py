"""HD95, ASSD, NSD: hand-computed answers, empty rules, borders, cropping invariance, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from samia.metrics import (
    assd,
    boundary,
    hd95,
    nsd,
    segmentation_metrics,
)


def _mask(shape: tuple[int, ...], *slices: slice | int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[slices] = True
    return mask


R5, R8 = math.sqrt(5), math.sqrt(8)

# (name, pred, gt, spacing, hd95, assd, {tolerance: nsd}) -- all by hand.
CASES = [
    # One pixel each, 3 rows and 4 columns apart: every distance is sqrt((3*2)^2 + (4*0.5)^2).
    (
        "2d_single_pixels",
        _mask((8, 10), 2, 3),
        _mask((8, 10), 5, 7),
        (2.0, 0.5),
        math.sqrt(40),
        math.sqrt(40),
        {2.0: 0.0, 6.3: 0.0, 6.33: 1.0},
    ),
    (
        "3d_single_voxels",
        _mask((5, 6, 7), 1, 1, 1),
        _mask((5, 6, 7), 3, 4, 5),
        (2.5, 0.7, 0.9),
        math.sqrt(5.0**2 + 2.1**2 + 3.6**2),
        math.sqrt(5.0**2 + 2.1**2 + 3.6**2),
        {6.5: 0.0, 6.51: 1.0},
    ),
    # 3x3 squares 10 columns apart: 8 boundary pixels each (the centre is interior). Seen from
    # the other square, their columns hold 3, 2, 3 pixels at 8, 9, 10 columns (x spacing 0.5 mm).
    # ASSD = (3*8 + 2*9 + 3*10) / 8 * 0.5; P95 of [8,8,8,9,9,10,10,10] = 10.
    (
        "2d_squares_10_apart",
        _mask((5, 16), slice(1, 4), slice(1, 4)),
        _mask((5, 16), slice(1, 4), slice(11, 14)),
        (1.0, 0.5),
        5.0,
        4.5,
        {4.0: 6 / 16, 4.5: 10 / 16, 5.0: 1.0},
    ),
    # 3x3x3 cubes 10 voxels apart along x: 26 boundary voxels each in slabs of 9, 8, 9 at
    # 8, 9, 10 voxels. ASSD = (9*8 + 8*9 + 9*10) / 26 = 9; P95 = 10.
    (
        "3d_cubes_10_apart",
        _mask((5, 5, 16), slice(1, 4), slice(1, 4), slice(1, 4)),
        _mask((5, 5, 16), slice(1, 4), slice(1, 4), slice(11, 14)),
        (2.0, 2.0, 1.0),
        10.0,
        9.0,
        {8.0: 18 / 52, 9.0: 34 / 52},
    ),
    # 5x5 square centred in a 9x9 square, 1 mm pixels. Inner boundary (16 px): all 2 from the
    # outer one. Outer boundary (32 px): 20 at 2, 8 at sqrt(5), 4 corners at sqrt(8).
    (
        "2d_nested_squares",
        _mask((11, 11), slice(3, 8), slice(3, 8)),
        _mask((11, 11), slice(1, 10), slice(1, 10)),
        (1.0, 1.0),
        R8,
        (36 * 2 + 8 * R5 + 4 * R8) / 48,
        {1.9: 0.0, 2.0: 36 / 48, 2.2: 36 / 48, 2.5: 44 / 48, 3.0: 1.0},
    ),
    # The whole image against itself: the boundary is the image frame, all distances 0.
    ("whole_image", np.ones((5, 6), bool), np.ones((5, 6), bool), (1.0, 1.0), 0.0, 0.0, {0.0: 1.0}),
]


@pytest.mark.parametrize(
    ("name", "pred", "gt", "spacing", "exp_hd95", "exp_assd", "exp_nsd"), CASES, ids=[c[0] for c in CASES]
)
def test_hand_computed(name, pred, gt, spacing, exp_hd95, exp_assd, exp_nsd) -> None:
    assert hd95(pred, gt, spacing) == pytest.approx(exp_hd95)
    assert assd(pred, gt, spacing) == pytest.approx(exp_assd)
    for tolerance, expected in exp_nsd.items():
        assert nsd(pred, gt, spacing, tolerance, "boundary_pixels") == pytest.approx(expected), tolerance
    # Symmetric metrics: swapping pred and gt changes nothing.
    assert hd95(gt, pred, spacing) == pytest.approx(exp_hd95)
    assert assd(gt, pred, spacing) == pytest.approx(exp_assd)


def test_boundary_uses_face_connectivity_and_image_border() -> None:
    mask = np.zeros((5, 5), bool)
    mask[0:3, 0:3] = True  # touches the top and left border
    mask[3, 3] = True  # touches the square only diagonally
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [1, 0, 1, 0, 0],  # (1, 1): its 4 face neighbours are foreground -> interior
            [1, 1, 1, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(boundary(mask), expected)


@pytest.mark.parametrize(("shape", "spacing"), [((4, 6), (1.0, 2.0)), ((3, 4, 6), (2.5, 1.0, 2.0))], ids=["2d", "3d"])
@pytest.mark.parametrize(("pred_empty", "gt_empty"), [(True, True), (True, False), (False, True), (False, False)])
def test_empty_rules(shape, spacing, pred_empty: bool, gt_empty: bool) -> None:
    one_pixel = np.zeros(shape, bool)
    one_pixel[(1,) * len(shape)] = True
    empty = np.zeros(shape, bool)
    pred, gt = (empty if pred_empty else one_pixel), (empty if gt_empty else one_pixel)
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing)))  # 12.65 / 13.87 mm
    if pred_empty and gt_empty:
        expected = dict.fromkeys(["dice", "iou", "nsd", "hd95", "assd"], math.nan)
    elif pred_empty or gt_empty:
        expected = {"dice": 0.0, "iou": 0.0, "nsd": 0.0, "hd95": diagonal, "assd": diagonal}
    else:
        expected = {"dice": 1.0, "iou": 1.0, "nsd": 1.0, "hd95": 0.0, "assd": 0.0}
    values = segmentation_metrics(pred, gt, spacing)
    alone = {
        "hd95": hd95(pred, gt, spacing),
        "assd": assd(pred, gt, spacing),
        "nsd": nsd(pred, gt, spacing, variant="boundary_pixels"),
    }
    for name, value in expected.items():
        assert values[name] == pytest.approx(value, nan_ok=True), name
        if name in alone:
            assert alone[name] == pytest.approx(value, nan_ok=True), name


def _uncropped_reference(pred: np.ndarray, gt: np.ndarray, spacing) -> tuple[float, float, float]:
    """HD95, ASSD, NSD@2mm on the full grid: no crop, no padding, scipy erosion with border 0."""
    cross = ndimage.generate_binary_structure(pred.ndim, 1)
    edge_p = pred & ~ndimage.binary_erosion(pred, cross, border_value=0)
    edge_g = gt & ~ndimage.binary_erosion(gt, cross, border_value=0)
    d_pg = ndimage.distance_transform_edt(~edge_g, sampling=spacing)[edge_p]
    d_gp = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_g]
    both = np.concatenate([d_pg, d_gp])
    return (
        max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)),
        both.mean(),
        np.count_nonzero(both <= 2.0) / both.size,
    )


def _blob(rng: np.random.Generator, shape: tuple[int, ...], fraction: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=2.0)
    return field > np.quantile(field, 1 - fraction)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("shape", "spacing"), [((40, 48), (0.7, 0.9)), ((12, 20, 24), (2.5, 0.7, 0.9))])
def test_crop_matches_uncropped_reference(seed: int, shape, spacing) -> None:
    rng = np.random.default_rng(seed)
    # Large foreground fractions, so the blobs touch the image border.
    pred, gt = _blob(rng, shape, 0.4), _blob(rng, shape, 0.5)
    values = segmentation_metrics(pred, gt, spacing, nsd_variant="boundary_pixels")
    np.testing.assert_allclose(
        (values["hd95"], values["assd"], values["nsd"]), _uncropped_reference(pred, gt, spacing), rtol=1e-12
    )


def _two_shapes(size: int, offset: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A disk (radius 10) and an overlapping ellipse in a ``size x size`` image, their common
    corner region at ``offset``; at offset 0 they touch the top and left border, at ``size - 21``
    the disk touches the bottom border and the ellipse is cut by it."""
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = offset[0] + 10, offset[1] + 10
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 10**2
    ellipse = ((yy - cy - 3) / 12.0) ** 2 + ((xx - cx + 2) / 7.0) ** 2 <= 1
    return disk, ellipse


@pytest.mark.parametrize(
    ("big_offset", "small_offset"),
    [((200, 300), (20, 20)), ((0, 0), (0, 0)), ((512 - 21, 0), (64 - 21, 0))],
    ids=["inside", "top_left_border", "bottom_border"],
)
def test_small_object_on_big_image_equals_small_image(big_offset, small_offset) -> None:
    """The same objects in a 512x512 and a 64x64 image, with the same spacing and the same
    position relative to any border they touch, give the same metrics (the crop changes nothing)."""
    spacing = (0.8, 0.6)
    big = segmentation_metrics(*_two_shapes(512, big_offset), spacing)
    small = segmentation_metrics(*_two_shapes(64, small_offset), spacing)
    assert big == pytest.approx(small, rel=1e-12)


def test_object_cut_by_the_border_is_closed_by_it() -> None:
    """Outside the image counts as background, so a mask cut by the left border has a boundary
    on the border column: missing that column costs one pixel (3 mm), not two."""
    gt = _mask((10, 10), slice(0, 10), slice(0, 4))
    pred = _mask((10, 10), slice(0, 10), slice(1, 4))
    assert hd95(gt, gt, (1.0, 3.0)) == 0.0
    assert hd95(pred, gt, (1.0, 3.0)) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("pred", "gt", "spacing", "message"),
    [
        (np.zeros((4, 4), bool), np.zeros((4, 5), bool), (1.0, 1.0), r"pred \(4, 4\) and gt \(4, 5\)"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0, 1.0, 1.0), "one entry per mask axis"),
        (np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4), bool), (1.0, 1.0), "one entry per mask axis"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0, 0.0), "finite and positive"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0, math.nan), "finite and positive"),
        (np.zeros(4, bool), np.zeros(4, bool), (1.0,), "2D or 3D"),
        (np.full((4, 4), 2), np.zeros((4, 4), bool), (1.0, 1.0), "only 0 and 1"),
        (np.zeros((4, 4)), np.zeros((4, 4), bool), (1.0, 1.0), "dtype float64"),
    ],
)
def test_bad_input_is_rejected(pred, gt, spacing, message: str) -> None:
    for metric in (hd95, assd, nsd, segmentation_metrics):
        with pytest.raises(ValueError, match=message):
            metric(pred, gt, spacing)


@pytest.mark.parametrize("tolerance", [-1.0, math.inf, math.nan])
def test_bad_tolerance_is_rejected(tolerance: float) -> None:
    mask = _mask((4, 4), 1, 1)
    with pytest.raises(ValueError, match="tolerance_mm"):
        nsd(mask, mask, (1.0, 1.0), tolerance_mm=tolerance)
