"""write_mask / write_label_map: round trips with geometry, refusals, atomic replacement."""

from __future__ import annotations

import numpy as np
import pytest

import samia.io.volume
from samia.errors import GeometryMismatchError, InvalidLabelError, UnsupportedFormatError
from samia.io import read_image, read_label, write_label_map, write_mask
from samia.types import Image2D, Volume


def _assert_same_geometry(read: Volume, reference: Volume) -> None:
    np.testing.assert_allclose(read.spacing, reference.spacing, rtol=1e-6)
    np.testing.assert_allclose(read.origin, reference.origin, atol=1e-4)
    np.testing.assert_allclose(read.direction, reference.direction, atol=1e-6)


@pytest.mark.parametrize("name", ["mask.nii.gz", "mask.nii", "mask.nrrd", "mask.mha"])
def test_volume_mask_round_trip_keeps_geometry(tmp_path, oblique_volume, name):
    mask = oblique_volume.array > 0
    written = write_mask(tmp_path / name, mask, reference=oblique_volume)
    assert written == tmp_path / name
    read = read_image(written)
    assert isinstance(read, Volume)
    assert read.array.dtype == np.uint8
    np.testing.assert_array_equal(read.array, mask.astype(np.uint8))
    _assert_same_geometry(read, oblique_volume)


def test_volume_label_map_round_trip(tmp_path, oblique_volume):
    labels = np.zeros(oblique_volume.shape, np.int64)
    labels[1, 2, 3] = 300
    labels[0, 0, 0] = 7
    read = read_label(write_label_map(tmp_path / "labels.nii.gz", labels, reference=oblique_volume))
    assert read.array.dtype == np.uint16
    np.testing.assert_array_equal(read.array, labels)
    _assert_same_geometry(read, oblique_volume)


def test_mask_of_a_dicom_series_lands_on_the_series(tmp_path, write_ct_series):
    folder = tmp_path / "series"
    write_ct_series(folder, [[0.0, 2.5 * k, 100.0] for k in range(4)], orientation=(1, 0, 0, 0, 0, -1))
    series = read_image(folder)
    mask = np.zeros(series.shape, bool)
    mask[1:3, 1:3, 2:5] = True
    read = read_image(write_mask(tmp_path / "seg.nii.gz", mask, reference=series))
    np.testing.assert_array_equal(read.array.astype(bool), mask)
    _assert_same_geometry(read, series)


def test_2d_mask_png_is_0_255(tmp_path):
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    reference = Image2D(np.zeros((5, 7, 3), np.uint8))
    read = read_image(write_mask(tmp_path / "mask.png", mask, reference=reference))
    assert read.array.dtype == np.uint8
    np.testing.assert_array_equal(read.array, mask.astype(np.uint8) * 255)


def test_2d_mask_tiff(tmp_path):
    mask = np.eye(4, dtype=bool)
    np.testing.assert_array_equal(read_image(write_mask(tmp_path / "mask.tif", mask)).array, mask * 255)


def test_2d_mask_nifti_keeps_spacing(tmp_path):
    mask = np.eye(4, 6, dtype=bool)
    reference = Image2D(np.zeros((4, 6)), spacing=(0.25, 0.5))
    read = read_image(write_mask(tmp_path / "mask.nii.gz", mask, reference=reference))
    assert isinstance(read, Image2D)
    np.testing.assert_array_equal(read.array, mask.astype(np.uint8))
    assert read.spacing == pytest.approx((0.25, 0.5))


@pytest.mark.parametrize(("maximum", "dtype"), [(255, np.uint8), (256, np.uint16), (65535, np.uint16)])
def test_2d_label_map_png_round_trip(tmp_path, maximum, dtype):
    labels = np.array([[0, 1, maximum]], dtype=np.int32)
    read = read_label(write_label_map(tmp_path / "labels.png", labels))
    assert read.array.dtype == dtype
    np.testing.assert_array_equal(read.array, labels)


def test_large_labels_need_tiff_not_png(tmp_path):
    labels = np.array([[0, 70000]], dtype=np.int64)
    with pytest.raises(UnsupportedFormatError, match=r"labels\.png: PNG holds values up to 65535"):
        write_label_map(tmp_path / "labels.png", labels)
    read = read_label(write_label_map(tmp_path / "labels.tif", labels))
    assert read.array.dtype == np.uint32
    np.testing.assert_array_equal(read.array, labels)


def test_shape_mismatch_with_reference(tmp_path, oblique_volume):
    with pytest.raises(GeometryMismatchError) as caught:
        write_mask(tmp_path / "bad.nii.gz", np.zeros((4, 5, 7), bool), reference=oblique_volume)
    message = str(caught.value)
    assert "bad.nii.gz" in message and "(4, 5, 7)" in message and "(4, 5, 6)" in message
    assert not (tmp_path / "bad.nii.gz").exists()


def test_refused_formats_and_dtypes(tmp_path):
    with pytest.raises(UnsupportedFormatError, match=r"mask\.jpg: cannot write '\.jpg' files"):
        write_mask(tmp_path / "mask.jpg", np.zeros((2, 2), bool))
    with pytest.raises(UnsupportedFormatError, match=r"volume\.png: a 3D array cannot be written as \.png"):
        write_mask(tmp_path / "volume.png", np.zeros((2, 2, 2), bool))
    with pytest.raises(TypeError, match="bool"):
        write_mask(tmp_path / "mask.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError, match="integer"):
        write_label_map(tmp_path / "labels.png", np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidLabelError, match=r"labels\.png: label map has negative values, e.g. -3"):
        write_label_map(tmp_path / "labels.png", np.array([[0, -3]]))


def test_creates_parent_folders_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a" / "b" / "mask.nii.gz"
    write_mask(path, np.ones((2, 3, 4), bool))
    write_mask(path, np.zeros((2, 3, 4), bool))  # replaces
    assert [p.name for p in path.parent.iterdir()] == ["mask.nii.gz"]
    assert not read_image(path).array.any()


def test_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "mask.nii.gz"
    write_mask(path, np.ones((2, 3, 4), bool))
    before = path.read_bytes()

    def killed_mid_write(temporary, image):
        temporary.write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(samia.io.volume, "write_sitk", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        write_mask(path, np.zeros((2, 3, 4), bool))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nii.gz"]
