"""3D -> 2D slicing and object extraction on real files."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from samia.data import Case, extract_objects, iter_slice_items, load_case
from samia.errors import ConfigurationError, GeometryMismatchError
from samia.types import Volume

PIECES = np.array([[1, 1, 0, 1], [1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 3]], np.uint8)


def _occupied(labels: np.ndarray, axis: int) -> list[int]:
    others = tuple(a for a in range(3) if a != axis)
    return [int(i) for i in np.flatnonzero(labels.any(axis=others))]


def test_axial_items_match_label_slices(phantom_volume_case):
    case, image, labels = phantom_volume_case
    items = iter_slice_items(case, axis=0, min_area=1)
    assert inspect.isgenerator(items)
    items = list(items)
    assert [it.slice_index for it in items] == _occupied(labels, 0)
    assert 0 < len(items) < labels.shape[0]
    for item in items:
        k = item.slice_index
        assert item.axis == 0 and item.case is case
        assert item.image.spacing == pytest.approx((0.8, 0.8))
        np.testing.assert_allclose(item.image.array, image[k], rtol=1e-6)
        present = [v for v in np.unique(labels[k]).tolist() if v]
        assert [o.label for o in item.objects] == present
        assert item.skipped_small == 0
        for obj in item.objects:
            assert obj.mask.dtype == bool and obj.mask.shape == (96, 96)
            np.testing.assert_array_equal(obj.mask, labels[k] == obj.label)
            assert obj.name == case.label_names[obj.label]
            assert obj.component is None


@pytest.mark.parametrize(("axis", "spacing"), [(1, (3.0, 0.8)), (2, (3.0, 0.8))])
def test_other_axes_use_the_remaining_spacing(phantom_volume_case, axis, spacing):
    case, image, labels = phantom_volume_case
    items = list(iter_slice_items(case, axis=axis, min_area=1))
    assert [it.slice_index for it in items] == _occupied(labels, axis)
    item = items[len(items) // 2]
    assert item.image.spacing == pytest.approx(spacing)
    assert item.image.shape == (12, 96)
    plane = np.take(labels, item.slice_index, axis=axis)
    for obj in item.objects:
        np.testing.assert_array_equal(obj.mask, plane == obj.label)


def test_min_area_skips_and_counts(phantom_volume_case):
    case, _, labels = phantom_volume_case
    min_area = 150
    items = list(iter_slice_items(case, min_area=min_area))
    assert [it.slice_index for it in items] == _occupied(labels, 0)  # slices with only small objects stay
    expected_kept = expected_skipped = 0
    for k in _occupied(labels, 0):
        values, counts = np.unique(labels[k][labels[k] > 0], return_counts=True)
        expected_kept += int((counts >= min_area).sum())
        expected_skipped += int((counts < min_area).sum())
    assert expected_skipped > 0 and expected_kept > 0
    assert sum(len(it.objects) for it in items) == expected_kept
    assert sum(it.skipped_small for it in items) == expected_skipped
    assert all(o.area >= min_area for it in items for o in it.objects)
    assert any(not it.objects and it.skipped_small for it in items)


def test_slices_option_and_bad_axis(phantom_volume_case):
    case, _, labels = phantom_volume_case
    occupied = _occupied(labels, 0)
    wanted = [occupied[0], occupied[-1], 0 if 0 not in occupied else 11]
    items = list(iter_slice_items(case, slices=wanted, min_area=1))
    assert [it.slice_index for it in items] == sorted(set(wanted) & set(occupied))
    with pytest.raises(ConfigurationError, match=r"slice indices \[12\] outside 0..11"):
        list(iter_slice_items(case, slices=[12]))
    with pytest.raises(ConfigurationError, match="axis"):
        list(iter_slice_items(case, axis=3))


@pytest.mark.parametrize(
    ("labels", "min_area", "cc", "expected", "skipped"),
    [
        # two 2x2 squares of label 1 that touch only at a corner: one 8-connected component
        (np.pad(np.kron(np.eye(2, dtype=np.uint8), np.ones((2, 2), np.uint8)), 1), 1, True, [(1, 0, 8)], 0),
        # PIECES: label 1 in two separate pieces (6 and 2 px) + label 3 (1 px)
        (PIECES, 1, True, [(1, 0, 6), (1, 1, 2), (3, 0, 1)], 0),
        (PIECES, 2, True, [(1, 0, 6), (1, 1, 2)], 1),
        (PIECES, 3, True, [(1, 0, 6)], 2),
        (PIECES, 3, False, [(1, None, 8)], 1),
        (np.zeros((4, 4), np.uint8), 1, False, [], 0),
    ],
)
def test_extract_objects_table(labels, min_area, cc, expected, skipped):
    objects, n_skipped = extract_objects(labels, {1: "a"}, min_area=min_area, connected_components=cc)
    assert [(o.label, o.component, o.area) for o in objects] == expected
    assert n_skipped == skipped
    assert all(o.name == ("a" if o.label == 1 else f"label_{o.label}") for o in objects)
    union = np.zeros(labels.shape, bool)
    for o in objects:
        assert not (union & o.mask).any()
        assert (labels[o.mask] == o.label).all()
        union |= o.mask


def test_connected_components_on_volume(tmp_path, save_volume):
    labels = np.zeros((3, 20, 20), np.uint8)
    labels[1, 2:10, 2:10] = 4  # 64 px
    labels[1, 14:18, 14:18] = 4  # 16 px, second component of the same value
    labels[1, 2:5, 14:19] = 2  # 15 px
    image = np.random.default_rng(0).normal(size=labels.shape).astype(np.float32)
    case = Case("cc", save_volume(tmp_path / "i.nii.gz", image), save_volume(tmp_path / "l.nii.gz", labels), "CT", "t")
    (whole,) = list(iter_slice_items(case, min_area=10))
    assert [(o.label, o.component, o.area) for o in whole.objects] == [(2, None, 15), (4, None, 80)]
    (split,) = list(iter_slice_items(case, min_area=10, connected_components=True))
    assert [(o.label, o.component, o.area) for o in split.objects] == [(2, 0, 15), (4, 0, 64), (4, 1, 16)]
    assert split.objects[0].name == "label_2"
    (small,) = list(iter_slice_items(case, min_area=20, connected_components=True))
    assert [(o.label, o.component) for o in small.objects] == [(4, 0)] and small.skipped_small == 2


def test_shape_mismatch_names_both_files(tmp_path, save_volume):
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1, 2:5, 2:5] = 1
    image_path = save_volume(tmp_path / "scan.nii.gz", np.ones((4, 10, 11), np.float32))
    label_path = save_volume(tmp_path / "seg.nii.gz", labels)
    case = Case("m", image_path, label_path, "CT", "t")
    with pytest.raises(GeometryMismatchError) as info:
        next(iter_slice_items(case))
    message = str(info.value)
    assert "scan.nii.gz" in message and "seg.nii.gz" in message
    assert "(4, 10, 12)" in message and "(4, 10, 11)" in message


def test_2d_against_3d_mismatch(tmp_path, save_volume, save_png, two_label_map):
    image_path = save_volume(tmp_path / "scan.nii.gz", np.ones((4, 32, 40), np.float32))
    label_path = save_png(tmp_path / "seg.png", two_label_map)
    with pytest.raises(GeometryMismatchError) as info:
        list(iter_slice_items(Case("m", image_path, label_path, "CT", "t")))
    assert "scan.nii.gz" in str(info.value) and "seg.png" in str(info.value)


def test_spacing_mismatch_names_both_files_and_tolerance(tmp_path, save_volume):
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1, 2:8, 2:8] = 1
    image = np.random.default_rng(1).normal(size=labels.shape).astype(np.float32)
    image_path = save_volume(tmp_path / "scan.nii.gz", image, spacing=(3.0, 0.8, 0.8))
    off_path = save_volume(tmp_path / "seg_off.nii.gz", labels, spacing=(3.0, 0.8, 0.82))
    close_path = save_volume(tmp_path / "seg_close.nii.gz", labels, spacing=(3.0, 0.8, 0.8002))
    with pytest.raises(GeometryMismatchError) as info:
        list(iter_slice_items(Case("s", image_path, off_path, "CT", "t")))
    message = str(info.value)
    assert "scan.nii.gz" in message and "seg_off.nii.gz" in message
    assert "0.82" in message and "spacing" in message
    image_read, label_read = load_case(Case("s", image_path, close_path, "CT", "t"))
    assert isinstance(image_read, Volume) and isinstance(label_read, Volume)
    assert len(list(iter_slice_items(Case("s", image_path, close_path, "CT", "t"), min_area=1))) == 1


def test_2d_case_gives_one_item(tmp_path, save_png, gray_image, two_label_map):
    case = Case("p", save_png(tmp_path / "i.png", gray_image), save_png(tmp_path / "m.png", two_label_map), "XR", "t")
    (item,) = list(iter_slice_items(case, axis=2, min_area=100))  # axis ignored for 2D
    assert item.slice_index is None and item.axis is None
    assert item.image.modality == "XR"
    assert [o.label for o in item.objects] == [2] and item.skipped_small == 1
    np.testing.assert_array_equal(item.image.array, gray_image)
