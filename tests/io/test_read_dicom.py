"""Reading DICOM: pydicom's bundled real files, and series written here with pydicom."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from samia.errors import CorruptFileError, InvalidImageError, MissingFileError, UnsupportedFormatError
from samia.io import read_image
from samia.io.dicom import samia_modality
from samia.types import Image2D, Volume

AXIAL_POSITIONS = [[-10.0, 20.0, 5.0 + 3.0 * k] for k in range(5)]


def test_ct_file_has_hounsfield_units_spacing_and_modality(dicom_file):
    path = dicom_file("CT_small.dcm")
    stored = pydicom.dcmread(path).pixel_array  # before rescale; the file has slope 1, intercept -1024
    image = read_image(path)
    assert isinstance(image, Image2D)
    assert image.modality == "CT"
    assert image.array.dtype == np.int32
    np.testing.assert_array_equal(image.array, stored.astype(np.int32) - 1024)
    assert image.spacing == pytest.approx((0.661468, 0.661468))


@pytest.mark.parametrize(
    "name", ["MR_small_jp2klossless.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"]
)
def test_compressed_and_big_endian_mr_decode_to_the_same_pixels(dicom_file, name):
    reference = read_image(dicom_file("MR_small.dcm"))
    image = read_image(dicom_file(name))
    assert image.modality == "MR" and reference.modality == "MR"
    assert image.spacing == pytest.approx((0.3125, 0.3125))
    np.testing.assert_array_equal(image.array, reference.array)


def test_jpeg2000_nuclear_medicine_is_other(dicom_file):
    image = read_image(dicom_file("JPEG2000.dcm"))
    assert image.modality == "other"  # NM is not one of samia's modalities
    assert image.array.shape == (1024, 256)
    assert image.spacing == pytest.approx((2.26, 2.26))


def test_ybr_jpeg_becomes_rgb(dicom_file):
    ybr = read_image(dicom_file("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL, JPEG baseline
    rgb = read_image(dicom_file("SC_rgb_dcmtk_+eb+cr.dcm"))  # the same picture stored as RGB
    assert ybr.is_rgb and ybr.array.shape == (100, 100, 3) and ybr.array.dtype == np.uint8
    assert np.abs(ybr.array.astype(int) - rgb.array).mean() < 2
    np.testing.assert_allclose(ybr.array[5, 5], [255, 0, 0], atol=3)  # the top band is red


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "examples_jpeg2k.dcm", "examples_palette.dcm"])
def test_ultrasound_colour_files_are_rgb(dicom_file, name):
    image = read_image(dicom_file(name))
    assert image.modality == "US"
    assert image.is_rgb and image.array.shape[2] == 3


def test_multiframe_gray_is_a_volume_with_geometry(dicom_file):
    path = dicom_file("rtdose.dcm")  # 15 frames, GridFrameOffsetVector 0, 5, ..., 70 mm
    dataset = pydicom.dcmread(path)
    volume = read_image(path)
    assert isinstance(volume, Volume)
    assert volume.array.shape == (15, 10, 10)
    np.testing.assert_array_equal(volume.array, dataset.pixel_array)
    assert volume.spacing == pytest.approx((5.0, 10.0, 10.0))
    assert volume.origin == pytest.approx([float(v) for v in dataset.ImagePositionPatient])
    assert volume.modality == "other"


def test_multiframe_colour_is_invalid(dicom_file):
    with pytest.raises(InvalidImageError, match=r"examples_ybr_color\.dcm: is a colour video \(30 frames\)"):
        read_image(dicom_file("examples_ybr_color.dcm"))


def test_dicom_without_pixels_is_invalid(dicom_file):
    with pytest.raises(InvalidImageError, match=r"rtplan\.dcm: DICOM file has no pixel data \(Modality 'RTPLAN'\)"):
        read_image(dicom_file("rtplan.dcm"))


def test_garbage_with_dcm_ending_is_corrupt(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(CorruptFileError) as caught:
        read_image(path)
    assert "garbage.dcm" in str(caught.value) and "cannot be read as DICOM" in str(caught.value)
    assert isinstance(caught.value.__cause__, pydicom.errors.InvalidDicomError)


def test_truncated_pixel_data_is_corrupt(dicom_file):
    with pytest.raises(CorruptFileError) as caught:
        read_image(dicom_file("MR_truncated.dcm"))
    assert "MR_truncated.dcm" in str(caught.value) and "cannot be decoded" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_transfer_syntax_without_decoder_is_unsupported(tmp_path, dicom_file):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    dataset.file_meta.TransferSyntaxUID = MPEG2MPML
    dataset.PixelData = encapsulate([b"\x00" * 64])
    dataset["PixelData"].VR = "OB"
    path = tmp_path / "video.dcm"
    dataset.save_as(path, enforce_file_format=True)
    with pytest.raises(UnsupportedFormatError, match=r"video\.dcm: DICOM pixel data cannot be decoded.*MPEG2"):
        read_image(path)


def test_dicom_file_without_ending_is_recognised(tmp_path, dicom_file):
    path = tmp_path / "IM000001"
    shutil.copy(dicom_file("CT_small.dcm"), path)
    assert read_image(path).modality == "CT"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("CT", "CT"),
        ("MR", "MR"),
        ("US", "US"),
        ("CR", "XR"),
        ("DX", "XR"),
        ("MG", "XR"),
        ("PT", "PET"),
        ("OP", "fundus"),
        ("ES", "endoscopy"),
        ("OPT", "OCT"),
        ("SM", "microscopy"),
        ("NM", "other"),
        ("", "other"),
        (None, "other"),
        ("ct ", "CT"),
    ],
)
def test_modality_mapping(tag, expected):
    assert samia_modality(tag) == expected


def test_series_is_sorted_by_position_and_rescaled(tmp_path, write_ct_series):
    folder = tmp_path / "series"
    stored = write_ct_series(folder, AXIAL_POSITIONS, file_order=[3, 0, 4, 1, 2])
    volume = read_image(folder)
    assert isinstance(volume, Volume)
    assert volume.modality == "CT"
    assert volume.array.shape == (5, 4, 6)
    np.testing.assert_array_equal(volume.array, stored.astype(np.int32) * 2 - 1024)
    assert volume.spacing == pytest.approx((3.0, 0.7, 0.8))  # (z, y, x): PixelSpacing is (row, column)
    assert volume.origin == pytest.approx((-10.0, 20.0, 5.0))
    assert volume.direction == pytest.approx((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert volume.path == str(folder)


def test_coronal_series_geometry(tmp_path, write_ct_series):
    """Rows along +x, columns along -z: the slice normal (row x column) is +y."""
    folder = tmp_path / "coronal"
    positions = [[0.0, 2.5 * k, 100.0] for k in range(4)]
    stored = write_ct_series(
        folder, positions, file_order=[2, 3, 1, 0], slope=1.0, intercept=0.0, orientation=(1, 0, 0, 0, 0, -1)
    )
    volume = read_image(folder)
    np.testing.assert_array_equal(volume.array, stored)
    assert volume.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert volume.origin == pytest.approx((0.0, 0.0, 100.0))
    # ITK direction columns: row direction, column direction, slice normal.
    assert volume.direction == pytest.approx((1, 0, 0, 0, 0, 1, 0, -1, 0))


def test_series_with_non_integral_rescale_is_float(tmp_path, write_ct_series):
    folder = tmp_path / "pet"
    stored = write_ct_series(folder, AXIAL_POSITIONS[:3], slope=0.5, intercept=0.25)
    volume = read_image(folder)
    assert volume.array.dtype.kind == "f"
    np.testing.assert_allclose(volume.array, stored * 0.5 + 0.25)


def test_two_series_in_one_folder_is_invalid(tmp_path, write_ct_series):
    folder = tmp_path / "mixed"
    write_ct_series(folder / "a", AXIAL_POSITIONS[:2])
    write_ct_series(folder / "b", AXIAL_POSITIONS[:2])
    for file in sorted(folder.glob("*/*.dcm")):
        file.rename(folder / f"{file.parent.name}_{file.name}")
    with pytest.raises(InvalidImageError) as caught:
        read_image(folder)
    assert str(folder) in str(caught.value) and "contains 2 DICOM series" in str(caught.value)


def test_series_with_missing_slice_is_invalid(tmp_path, write_ct_series):
    folder = tmp_path / "gap"
    write_ct_series(folder, [AXIAL_POSITIONS[k] for k in (0, 1, 2, 4)])
    with pytest.raises(InvalidImageError) as caught:
        read_image(folder)
    assert "gap" in str(caught.value) and "not evenly spaced" in str(caught.value)


def test_folder_without_dicom_is_missing(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here")
    with pytest.raises(MissingFileError, match=r"empty: folder contains no DICOM image series"):
        read_image(folder)


def test_single_file_series_is_image2d(tmp_path, write_ct_series):
    folder = tmp_path / "one"
    stored = write_ct_series(folder, AXIAL_POSITIONS[:1])
    image = read_image(folder)
    assert isinstance(image, Image2D) and image.modality == "CT"
    np.testing.assert_array_equal(image.array, stored[0].astype(np.int32) * 2 - 1024)
    assert image.spacing == pytest.approx((0.7, 0.8))


def test_a_folder_with_two_series_names_both(tmp_path) -> None:
    from clinical_files import write_ct_series

    first = write_ct_series(tmp_path / "a", np.zeros((3, 6, 5), np.int16), series_uid="1.2.3.4.1", series_number=2)
    second = write_ct_series(tmp_path / "b", np.zeros((3, 6, 5), np.int16), series_uid="1.2.3.4.2", series_number=7)
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in first + second:
        shutil.copy(path, folder / f"{path.parent.name}_{path.name}")
    with pytest.raises(InvalidImageError, match=r"mixed: folder contains 2 DICOM series") as raised:
        read_image(folder)
    assert "UID 1.2.3.4.1" in str(raised.value) and "UID 1.2.3.4.2" in str(raised.value)
    assert "3 files" in str(raised.value)
