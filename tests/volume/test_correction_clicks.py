"""Correction clicks as the CVPR 2025 interactive 3D challenge places them, against a transcription of
``compute_edt`` / ``sample_coord`` of ``CVPR25_iter_eval.py``, and the clicked prompt they make."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.ndimage import distance_transform_edt

from samia.data.phantoms import ellipsoid_mask
from samia.volume import Box3D, Click3D, clicked_prompt, correction_click


def _reference_click(segs_cls: np.ndarray, gts_cls: np.ndarray):
    """The challenge's loop body for one class (connected components with 26-connectivity, as cc3d's)."""
    error_mask = (segs_cls != gts_cls).astype(np.uint8)
    errors, _ = ndimage.label(error_mask, structure=np.ones((3, 3, 3)))
    component_sizes = np.bincount(errors.flat)
    component_sizes[0] = 0
    largest_component = errors == np.argmax(component_sizes)
    coords = np.argwhere(largest_component)
    min_coords = coords.min(axis=0)
    max_coords = coords.max(axis=0) + 1
    crop_shape = max_coords - min_coords
    padding = np.maximum((crop_shape * 0.25).astype(int), 1)
    center_crop = np.zeros(crop_shape + 2 * padding, dtype=np.uint8)
    center_crop[
        padding[0] : padding[0] + crop_shape[0],
        padding[1] : padding[1] + crop_shape[1],
        padding[2] : padding[2] + crop_shape[2],
    ] = largest_component[min_coords[0] : max_coords[0], min_coords[1] : max_coords[1], min_coords[2] : max_coords[2]]
    edt = distance_transform_edt(center_crop)
    dist_cropped = edt[
        padding[0] : padding[0] + crop_shape[0],
        padding[1] : padding[1] + crop_shape[1],
        padding[2] : padding[2] + crop_shape[2],
    ]
    dist_full = np.zeros_like(largest_component, dtype=dist_cropped.dtype)
    dist_full[min_coords[0] : max_coords[0], min_coords[1] : max_coords[1], min_coords[2] : max_coords[2]] = (
        dist_cropped
    )
    np.random.seed(42)
    max_coords_all = np.argwhere(dist_full == dist_full.max())
    center = tuple(max_coords_all[np.random.choice(len(max_coords_all))])
    return center, ("bg" if gts_cls[center] == 0 else "fg")


@pytest.mark.parametrize("seed", range(6))
def test_the_click_is_the_challenges_click(seed) -> None:
    rng = np.random.default_rng(seed)
    shape = (14, 30, 34)
    gt = ellipsoid_mask(shape, (7, 15, 17), (5, 9, 10))
    pred = ellipsoid_mask(shape, (7 + rng.integers(-2, 3), 15 + rng.integers(-3, 4), 17), (4, 8, 12))
    pred ^= rng.random(shape) < 0.02  # scattered errors: several components of several sizes
    click = correction_click(pred, gt)
    center, kind = _reference_click(pred.astype(np.uint8), gt.astype(np.uint8))
    assert click.voxel == tuple(int(v) for v in center)
    assert click.label == (1 if kind == "fg" else 0)


def test_a_perfect_prediction_gets_no_click() -> None:
    gt = ellipsoid_mask((8, 10, 12), (4, 5, 6), (2, 3, 3))
    assert correction_click(gt.copy(), gt) is None


def test_clicks_join_their_slices_prompt_with_the_boxs_projection() -> None:
    box = Box3D(2, 3, 4, 20, 22, 12)

    prompt = clicked_prompt(box, [Click3D((6, 10, 11), 1), Click3D((6, 12, 5), 0), Click3D((8, 8, 9), 1)], axis=0)
    assert prompt.bounds == (4, 12)
    keys = {key.index: key.prompt for key in prompt.key_slices}
    assert sorted(keys) == [6, 8]  # the middle slice int((12 - 4) / 2 + 4) = 8 holds a click too
    assert keys[6].points.tolist() == [[11, 10], [5, 12]] and keys[6].labels.tolist() == [1, 0]
    assert keys[8].box.tolist() == [2, 3, 20, 22] and keys[8].points.tolist() == [[9, 8]]
