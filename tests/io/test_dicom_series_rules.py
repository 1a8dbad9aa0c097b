"""A DICOM folder that does not stack into one volume is refused, naming the series, the file and the
rule; what one SeriesInstanceUID can hide (a localizer, echoes, a tilt) is split off or refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from clinical_files import input_warnings, write_ct_series

from samia.errors import InvalidImageError
from samia.io import read_image
from samia.types import Volume

HU = np.stack([np.full((6, 5), 10 * k, np.int16) for k in range(5)])


def _series(tmp_path: Path) -> list[Path]:
    return write_ct_series(tmp_path / "ct", HU, spacing=(2.5, 0.7, 0.8), origin=(-40.0, -30.0, 12.5))


def _edit(path: Path, **tags: object) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in tags.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.save_as(path)


def _refusal(folder: Path) -> str:
    with pytest.raises(InvalidImageError) as raised:
        read_image(folder)
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_rotated_slice_is_refused(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[2], ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 0.9998, 0.02])
    message = _refusal(files[0].parent)
    assert str(files[2]) in message and "ImageOrientationPatient" in message and "rotated" in message


def test_an_orientation_within_tolerance_is_read(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[2], ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 1.0, 0.00005])
    assert isinstance(read_image(files[0].parent), Volume)


def test_another_pixel_spacing_is_refused(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[3], PixelSpacing=[0.75, 0.8])
    message = _refusal(files[0].parent)
    assert str(files[3]) in message and "PixelSpacing [0.75, 0.8]" in message


def test_a_slice_without_position_is_refused(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[1], ImagePositionPatient=None)
    message = _refusal(files[0].parent)
    assert str(files[1]) in message and "ImagePositionPatient" in message


def test_a_slice_of_another_size_is_one_line(tmp_path) -> None:
    files = _series(tmp_path)
    other = write_ct_series(tmp_path / "other", np.zeros((1, 7, 5), np.int16))[0]
    ds = pydicom.dcmread(other)
    reference = pydicom.dcmread(files[4])
    ds.SeriesInstanceUID, ds.ImagePositionPatient = reference.SeriesInstanceUID, reference.ImagePositionPatient
    ds.save_as(files[4])
    message = _refusal(files[0].parent)
    assert str(files[4]) in message and "7 x 5 pixels" in message and "6 x 5" in message


def test_a_duplicated_slice_is_refused(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[3], ImagePositionPatient=[-40.0, -30.0, 12.5 + 2 * 2.5])
    message = _refusal(files[0].parent)
    assert "same ImagePositionPatient" in message and "slice002.dcm" in message and "slice003.dcm" in message


def test_two_echoes_in_one_series_name_the_tag_that_splits_them(tmp_path) -> None:
    files = _series(tmp_path)
    second = write_ct_series(tmp_path / "echo2", HU, spacing=(2.5, 0.7, 0.8), origin=(-40.0, -30.0, 12.5))
    series_uid = pydicom.dcmread(files[0]).SeriesInstanceUID
    for path in files:
        _edit(path, EchoNumbers=1, EchoTime=10.0)
    for path in second:
        _edit(path, EchoNumbers=2, EchoTime=40.0, SeriesInstanceUID=series_uid)
        path.rename(files[0].parent / f"echo2_{path.name}")
    message = _refusal(files[0].parent)
    assert "told apart by EchoNumbers" in message and "1: 5 files" in message and "2: 5 files" in message


def test_a_localizer_in_the_folder_is_left_out_with_a_warning(tmp_path) -> None:
    files = _series(tmp_path)
    localizer = write_ct_series(tmp_path / "scout", np.zeros((1, 6, 5), np.int16))[0]
    ds = pydicom.dcmread(localizer)
    ds.SeriesInstanceUID = pydicom.dcmread(files[0]).SeriesInstanceUID
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]  # a coronal scout
    ds.save_as(files[0].parent / "scout.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = read_image(files[0].parent)
    assert volume.shape == (5, 6, 5)
    np.testing.assert_array_equal(volume.array, HU)
    assert any("scout.dcm" in w.problem and "localizer" in w.problem for w in input_warnings(caught))


def test_a_gantry_tilt_is_refused(tmp_path) -> None:
    files = _series(tmp_path)
    for index, path in enumerate(files):  # each slice shifted in y by tan(15 degrees) of its z step
        _edit(path, ImagePositionPatient=[-40.0, -30.0 + index * 2.5 * np.tan(np.radians(15)), 12.5 + index * 2.5])
    _edit(files[0], GantryDetectorTilt=15.0)
    message = _refusal(files[0].parent)
    assert "sheared" in message and "15.00 degrees" in message and "GantryDetectorTilt = 15" in message


def test_uneven_gaps_name_the_two_slices(tmp_path) -> None:
    files = _series(tmp_path)
    _edit(files[4], ImagePositionPatient=[-40.0, -30.0, 12.5 + 3 * 2.5 + 2.6])
    message = _refusal(files[0].parent)
    assert "not evenly spaced" in message and "slice003.dcm and slice004.dcm is 2.6 mm" in message


def test_slices_listed_out_of_order_are_stacked_along_the_normal(tmp_path) -> None:
    files = _series(tmp_path)
    for path, new_name in zip(files, ["e.dcm", "c.dcm", "a.dcm", "d.dcm", "b.dcm"]):
        path.rename(path.parent / new_name)
    volume = read_image(files[0].parent)
    np.testing.assert_array_equal(volume.array, HU)
    assert volume.spacing == pytest.approx((2.5, 0.7, 0.8))
