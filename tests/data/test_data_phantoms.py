"""Seeded synthetic phantoms and the datasets written from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import skeletonize

from samia.data import build_manifest, iter_slice_items, make_phantom, make_phantom_volume, write_phantom_dataset
from samia.io import read_image, read_label
from samia.types import Image2D, Volume


def test_same_seed_same_arrays_different_seed_different():
    a_image, a_labels, a_names = make_phantom(np.random.default_rng(3))
    b_image, b_labels, b_names = make_phantom(np.random.default_rng(3))
    c_image, c_labels, _ = make_phantom(np.random.default_rng(4))
    np.testing.assert_array_equal(a_image.array, b_image.array)
    np.testing.assert_array_equal(a_labels, b_labels)
    assert a_names == b_names == {1: "blob", 2: "low_contrast", 3: "vessel"}
    assert not np.array_equal(a_labels, c_labels)
    assert not np.array_equal(a_image.array, c_image.array)
    v1 = make_phantom_volume(np.random.default_rng(3), shape=(8, 64, 64))
    v2 = make_phantom_volume(np.random.default_rng(3), shape=(8, 64, 64))
    np.testing.assert_array_equal(v1[0].array, v2[0].array)
    np.testing.assert_array_equal(v1[1], v2[1])


@pytest.mark.parametrize("seed", range(6))
def test_phantom_objects_separate_connected_and_as_described(seed):
    image, labels, names = make_phantom(np.random.default_rng(seed), shape=(128, 128))
    array = image.array
    assert isinstance(image, Image2D) and image.spacing == (1.0, 1.0)
    assert array.dtype == np.float32 and array.shape == (128, 128)
    assert 0.0 <= array.min() and array.max() <= 1.0
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2, 3}
    masks = {names[v]: labels == v for v in names}
    # not overlapping, not even touching: a one-pixel dilation of each stays off the others
    for name, mask in masks.items():
        assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1, name
        grown = ndimage.binary_dilation(mask, structure=np.ones((3, 3)))
        others = (labels > 0) & ~mask
        assert not (grown & others).any(), name
    background = labels == 0

    def ring_mean(mask):
        ring = ndimage.binary_dilation(mask, iterations=6) & ~ndimage.binary_dilation(mask, iterations=2) & background
        return float(array[ring].mean())

    inner = lambda m: ndimage.binary_erosion(m, iterations=2)  # noqa: E731 - away from the blurred edge
    blob_contrast = array[inner(masks["blob"])].mean() - ring_mean(masks["blob"])
    low_contrast = array[inner(masks["low_contrast"])].mean() - ring_mean(masks["low_contrast"])
    assert blob_contrast > 0.4
    assert 0.05 < low_contrast < 0.15
    vessel = masks["vessel"]
    centreline = skeletonize(vessel)
    assert centreline.sum() > 30
    # distance to the background, measured on the centreline: 2 for a 3 px wide straight run,
    # sqrt(2) for a diagonal run about 2 px wide; never more (at most 3 px wide)
    depth = ndimage.distance_transform_edt(vessel)
    assert depth.max() <= 2.0
    assert np.median(depth[centreline]) >= np.sqrt(2) - 1e-9


def test_phantom_volume_geometry_and_3d_objects():
    volume, labels, names = make_phantom_volume(np.random.default_rng(0), shape=(10, 64, 64))
    assert isinstance(volume, Volume)
    assert volume.spacing == (3.0, 0.8, 0.8) and volume.origin != (0.0, 0.0, 0.0)
    assert labels.shape == volume.shape == (10, 64, 64)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    for value in names:
        z = np.flatnonzero((labels == value).any(axis=(1, 2)))
        assert len(z) >= 1 and np.all(np.diff(z) == 1)  # contiguous in z


def test_phantom_rejects_unknown_kind_and_tiny_shape():
    with pytest.raises(ValueError, match="unknown phantom kinds"):
        make_phantom(np.random.default_rng(0), kinds=("tumour",))
    with pytest.raises(ValueError, match="without overlap"):
        make_phantom(np.random.default_rng(0), shape=(12, 12), kinds=("blob",) * 6)


def test_write_2d_folder_dataset_round_trip(tmp_path):
    root = write_phantom_dataset(tmp_path / "ph", 3, np.random.default_rng(5), shape=(64, 64))
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == {"1": "blob", "2": "low_contrast", "3": "vessel"}
    cases = build_manifest(root)
    assert [c.case_id for c in cases] == ["phantom_000", "phantom_001", "phantom_002"]
    expected_image, expected_labels, _ = make_phantom(np.random.default_rng(5), (64, 64))
    image = read_image(cases[0].image_path)
    assert image.array.dtype == np.uint16
    np.testing.assert_allclose(image.array / 65535.0, expected_image.array, atol=1 / 65535)
    np.testing.assert_array_equal(read_label(cases[0].label_path).array, expected_labels)
    (item,) = list(iter_slice_items(cases[0], min_area=1))
    assert [o.name for o in item.objects] == ["blob", "low_contrast", "vessel"]


def test_write_3d_msd_dataset_keeps_geometry(tmp_path):
    rng = np.random.default_rng(9)
    root = write_phantom_dataset(tmp_path / "ph3", 2, rng, layout="msd", shape=(48, 48), volume_depth=8)
    cases = build_manifest(root)
    assert len(cases) == 2 and cases[0].image_path.name == "phantom_000.nii.gz"
    image, labels = read_image(cases[1].image_path), read_label(cases[1].label_path)
    assert isinstance(image, Volume) and isinstance(labels, Volume)
    assert image.shape == labels.shape == (8, 48, 48)
    assert image.spacing == pytest.approx((3.0, 0.8, 0.8)) and labels.spacing == pytest.approx((3.0, 0.8, 0.8))
    assert image.origin == pytest.approx((-51.2, 20.4, -31.5)) and labels.origin == pytest.approx(image.origin)
    items = list(iter_slice_items(cases[1], min_area=1))
    assert items and all(it.image.spacing == pytest.approx((0.8, 0.8)) for it in items)
