"""Reading NIfTI, NRRD and MetaImage files: arrays, axis order and geometry."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from samia.errors import CorruptFileError, InvalidImageError
from samia.io import read_image
from samia.types import Image2D, Volume


def _sitk_image(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing[::-1])
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction)
    return image


def _assert_geometry(read: Volume, expected: Volume) -> None:
    np.testing.assert_allclose(read.spacing, expected.spacing, rtol=1e-6)
    np.testing.assert_allclose(read.origin, expected.origin, atol=1e-4)
    np.testing.assert_allclose(read.direction, expected.direction, atol=1e-6)


@pytest.mark.parametrize("name", ["case.nii.gz", "case.nii", "case.nrrd", "case.mha", "case.mhd"])
def test_volume_formats_keep_array_and_geometry(tmp_path, oblique_volume, name):
    path = tmp_path / name
    sitk.WriteImage(_sitk_image(oblique_volume), str(path))
    volume = read_image(path)
    assert isinstance(volume, Volume)
    assert volume.array.shape == (4, 5, 6)  # (Z, Y, X)
    assert volume.array.dtype == np.int16
    np.testing.assert_array_equal(volume.array, oblique_volume.array)
    _assert_geometry(volume, oblique_volume)
    assert volume.spacing == pytest.approx((3.0, 0.7, 0.8))  # (z, y, x), reversed from ITK
    assert volume.modality == "other"
    assert volume.path == str(path)


def test_nibabel_affine_maps_to_itk_geometry(tmp_path):
    """A NIfTI written by nibabel (RAS affine) reads with ITK's LPS origin/direction and (z, y, x) spacing."""
    data = np.arange(6 * 5 * 4, dtype=np.float32).reshape(6, 5, 4)  # nibabel order (X, Y, Z)
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about z
    zooms = np.array([0.8, 0.7, 3.0])  # (x, y, z)
    affine = np.eye(4)
    affine[:3, :3] = rotation * zooms
    affine[:3, 3] = [10.0, -20.0, 30.0]
    path = tmp_path / "nib.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)

    volume = read_image(path)
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    assert volume.spacing == pytest.approx((3.0, 0.7, 0.8))
    ras_to_lps = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(volume.origin, ras_to_lps @ affine[:3, 3], atol=1e-5)
    np.testing.assert_allclose(np.reshape(volume.direction, (3, 3)), ras_to_lps @ rotation, atol=1e-6)


def test_nifti_scaling_is_applied(tmp_path):
    image = nib.Nifti1Image(np.array([[[0, 1], [2, 3]]], dtype=np.int16).transpose(2, 1, 0), np.eye(4))
    image.header.set_slope_inter(2.0, -1024.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(image, path)
    assert isinstance(read_image(path), Image2D)  # a single slice
    np.testing.assert_allclose(read_image(path).array, [[-1024, -1022], [-1020, -1018]])


def test_single_slice_nifti_is_image2d(tmp_path):
    array = np.arange(20, dtype=np.uint8).reshape(1, 4, 5)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.25, 2.0))  # (x, y, z)
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(image, str(path))
    read = read_image(path)
    assert isinstance(read, Image2D)
    np.testing.assert_array_equal(read.array, array[0])
    assert read.spacing == pytest.approx((0.25, 0.5))  # (y, x)


def test_2d_mha_and_rgb_mha(tmp_path):
    gray = sitk.GetImageFromArray(np.arange(20, dtype=np.uint16).reshape(4, 5))
    gray.SetSpacing((0.5, 0.25))
    sitk.WriteImage(gray, str(tmp_path / "gray.mha"))
    rgb_array = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    sitk.WriteImage(sitk.GetImageFromArray(rgb_array, isVector=True), str(tmp_path / "rgb.mha"))

    read_gray = read_image(tmp_path / "gray.mha")
    assert isinstance(read_gray, Image2D) and read_gray.spacing == pytest.approx((0.25, 0.5))
    read_rgb = read_image(tmp_path / "rgb.mha")
    assert read_rgb.is_rgb
    np.testing.assert_array_equal(read_rgb.array, rgb_array)


def test_4d_nifti_is_invalid(tmp_path):
    path = tmp_path / "timeseries.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 3), np.float32), np.eye(4)), path)
    with pytest.raises(InvalidImageError) as caught:
        read_image(path)
    message = str(caught.value)
    assert "timeseries.nii.gz" in message and "4 dimensions" in message and "(6, 5, 4, 3)" in message


def test_1d_nifti_is_invalid(tmp_path):
    path = tmp_path / "line.nii"
    nib.save(nib.Nifti1Image(np.zeros((7,), np.float32), np.eye(4)), path)
    with pytest.raises(InvalidImageError, match=r"line\.nii: has 1 dimension"):
        read_image(path)


def test_vector_volume_is_invalid(tmp_path):
    path = tmp_path / "field.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.float32), isVector=True), str(path))
    with pytest.raises(InvalidImageError, match=r"field\.nrrd.*3 components per voxel"):
        read_image(path)


def test_nan_in_nifti_is_invalid(tmp_path):
    data = np.zeros((5, 4, 3), np.float32)
    data[0, 0, 0] = np.nan
    data[1, 2, 2] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(InvalidImageError) as caught:
        read_image(path)
    assert "nan.nii.gz" in str(caught.value) and "contains 2 NaN/Inf pixels" in str(caught.value)


@pytest.mark.parametrize("name", ["cut.nii.gz", "cut.nii"])
def test_truncated_nifti_is_corrupt(tmp_path, name):
    """ITK zero-fills a truncated NIfTI silently; samia must refuse it."""
    whole = tmp_path / f"whole{name[3:]}"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16), np.float32), np.eye(4)), whole)
    path = tmp_path / name
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(CorruptFileError) as caught:
        read_image(path)
    assert name in str(caught.value) and "truncated" in str(caught.value)


def test_garbage_nrrd_is_corrupt(tmp_path):
    path = tmp_path / "garbage.nrrd"
    path.write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\n" + b"\0" * 10)
    with pytest.raises(CorruptFileError) as caught:
        read_image(path)
    assert "garbage.nrrd" in str(caught.value) and "cannot be decoded by SimpleITK" in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_nifti_with_trailing_singleton_time_axis_is_3d(tmp_path):
    data = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4, 1)
    path = tmp_path / "t1.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    volume = read_image(path)
    assert isinstance(volume, Volume)
    np.testing.assert_array_equal(volume.array, data[..., 0].transpose(2, 1, 0))
    assert volume.array.flags["C_CONTIGUOUS"]
