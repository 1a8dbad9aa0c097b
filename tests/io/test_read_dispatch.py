"""read_image's dispatch and modality argument; read_label's value checks."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from samia.errors import ConfigurationError, InvalidLabelError, MissingFileError, UnsupportedFormatError
from samia.io import read_image, read_label
from samia.io.formats import SUPPORTED_SUFFIXES
from samia.types import Volume


def _save_png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError) as caught:
        read_image(tmp_path / "absent.nii.gz")
    assert "absent.nii.gz" in str(caught.value) and "no such file" in str(caught.value)


def test_unsupported_ending_lists_supported_ones(tmp_path):
    path = tmp_path / "scan.xyz"
    path.write_bytes(b"whatever")
    with pytest.raises(UnsupportedFormatError) as caught:
        read_image(path)
    message = str(caught.value)
    assert "scan.xyz" in message and "unsupported file ending '.xyz'" in message
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)


def test_modality_defaults_to_other_and_can_be_overridden(tmp_path, dicom_file):
    path = _save_png(tmp_path / "fundus.png", np.zeros((4, 4, 3), np.uint8))
    assert read_image(path).modality == "other"
    assert read_image(path, modality="fundus").modality == "fundus"
    assert read_image(dicom_file("CT_small.dcm")).modality == "CT"
    assert read_image(dicom_file("CT_small.dcm"), modality="other").modality == "other"


def test_unknown_modality_is_a_configuration_error(tmp_path):
    path = _save_png(tmp_path / "image.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigurationError, match=r"unknown modality 'xray'.*XR"):
        read_image(path, modality="xray")


def test_constant_image_is_not_an_error_at_read_time(tmp_path):
    path = _save_png(tmp_path / "flat.png", np.full((4, 4), 9, np.uint8))
    assert (read_image(path).array == 9).all()


def test_label_png_and_smallest_dtype(tmp_path):
    labels = np.array([[0, 1], [2, 300]], dtype=np.uint16)
    read = read_label(_save_png(tmp_path / "labels.png", labels))
    assert read.array.dtype == np.uint16
    np.testing.assert_array_equal(read.array, labels)
    small = read_label(_save_png(tmp_path / "small.png", (labels % 256).astype(np.uint16)))
    assert small.array.dtype == np.uint8


def test_all_zero_label_map_is_allowed(tmp_path):
    read = read_label(_save_png(tmp_path / "empty.png", np.zeros((3, 3), np.uint8)))
    assert read.array.dtype == np.uint8 and not read.array.any()


def test_float_nifti_label_with_integral_values_becomes_unsigned(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[1, 2, 3] = 2.0
    data[0, 0, 0] = 70000.0
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    read = read_label(path)
    assert isinstance(read, Volume)
    assert read.array.dtype == np.uint32
    np.testing.assert_array_equal(read.array, data.transpose(2, 1, 0).astype(np.uint32))


def test_float_label_with_fraction_is_invalid(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[2, 2, 2] = 0.5
    path = tmp_path / "soft.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(InvalidLabelError) as caught:
        read_label(path)
    assert "soft.nii.gz" in str(caught.value) and "label map has non-integer values, e.g. 0.5" in str(caught.value)


def test_negative_labels_are_invalid(tmp_path):
    path = tmp_path / "negative.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.array([[[0, 1], [-1, 2]]], dtype=np.int16)), str(path))
    with pytest.raises(InvalidLabelError) as caught:
        read_label(path)
    assert "negative.mha" in str(caught.value) and "label map has negative values, e.g. -1" in str(caught.value)


def test_rgb_label_with_equal_channels_is_gray(tmp_path):
    labels = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    read = read_label(_save_png(tmp_path / "gray_rgb.png", np.stack([labels] * 3, axis=-1)))
    np.testing.assert_array_equal(read.array, labels)


def test_rgb_label_with_differing_channels_is_invalid(tmp_path):
    colours = np.zeros((2, 2, 3), np.uint8)
    colours[0, 0] = [255, 0, 0]
    path = _save_png(tmp_path / "colour_labels.png", colours)
    with pytest.raises(InvalidLabelError) as caught:
        read_label(path)
    assert "colour_labels.png" in str(caught.value) and "RGB with differing channels" in str(caught.value)
