"""Clinical files read as a radiologist's viewer shows them (issue: silent misreadings).

Every expectation comes from the DICOM standard or from an independent reader (SimpleITK/GDCM,
pydicom's own VOI LUT), never from samia.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from clinical_files import chest_like, input_warnings, pydicom_file, write_dicom
from PIL import Image
from pydicom.pixels import apply_voi_lut
from skimage.transform import resize

from samia.io import read_image, read_label, write_mask
from samia.transforms import default_preset, get_preset, to_rgb_uint8
from samia.types import Image2D

SAMPLE_MR = "samia/data/samples/colin27_aal_2d/images/colin27_axial_025.png"


def _read_recording(path, reader=read_image):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = reader(path)
    return image, input_warnings(caught)


# ---------------------------------------------------------------------------------------------
# MONOCHROME1


def test_monochrome1_radiograph_is_inverted_over_its_bit_range(tmp_path):
    stored = chest_like()
    path = write_dicom(
        tmp_path / "cr.dcm",
        stored,
        PhotometricInterpretation="MONOCHROME1",
        WindowCenter=1000,
        WindowWidth=2000,
        PixelSpacing=None,
        ImagerPixelSpacing=[0.14, 0.15],
    )
    image = read_image(path)
    np.testing.assert_array_equal(image.array, 4095 - stored.astype(np.int64))  # 12 bits stored
    assert image.window == (4095 - 1000, 2000)  # the file's window mirrored with the values
    assert image.spacing == pytest.approx((0.14, 0.15)) and image.spacing_source == "ImagerPixelSpacing"
    assert image.modality == "XR"
    # the bright body (high stored values are dark in MONOCHROME1) reaches the model dark
    rgb = to_rgb_uint8(image, default_preset(image.modality, image.is_rgb))
    assert rgb[48, 40, 0] < rgb[2, 2, 0]


def test_monochrome1_single_file_matches_gdcm(tmp_path):
    """GDCM (through SimpleITK) inverts MONOCHROME1 itself: samia's pydicom path must agree with it."""
    source = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    source.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "m1.dcm"
    source.save_as(path)
    gdcm = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))[0]
    np.testing.assert_array_equal(read_image(path).array, gdcm)


def test_monochrome1_series_is_inverted(tmp_path, write_ct_series):
    folder = tmp_path / "series"
    stored = write_ct_series(folder, [[0.0, 0.0, 3.0 * k] for k in range(3)], slope=1.0, intercept=0.0)
    for file in folder.iterdir():
        dataset = pydicom.dcmread(file)
        dataset.PhotometricInterpretation = "MONOCHROME1"
        dataset.save_as(file)
    volume = read_image(folder)
    np.testing.assert_array_equal(volume.array, -1 - stored.astype(np.int32))  # 16-bit signed: lo + hi = -1


# ---------------------------------------------------------------------------------------------
# pixel spacing


@pytest.mark.parametrize(
    ("tags", "found"),
    [
        ({"PixelSpacing": [0, 0]}, "PixelSpacing"),
        ({"PixelSpacing": None}, "neither"),
        ({"PixelSpacing": [0.5, -1.0], "ImagerPixelSpacing": [0, 0]}, "ImagerPixelSpacing"),
    ],
)
def test_missing_or_zero_pixel_spacing_falls_back_to_1mm_with_a_warning(tmp_path, tags, found):
    path = write_dicom(tmp_path / "x.dcm", chest_like(), **tags)
    image, caught = _read_recording(path)
    assert image.spacing == (1.0, 1.0) and image.spacing_source == "fallback"
    assert len(caught) == 1 and caught[0].path == str(path)
    assert "1 mm" in caught[0].problem and found in caught[0].problem


def test_valid_pixel_spacing_is_used_without_warning():
    image, caught = _read_recording(pydicom_file("MR_small.dcm"))
    assert image.spacing == pytest.approx((0.3125, 0.3125)) and image.spacing_source == "PixelSpacing"
    assert caught == []


def test_spacing_source_of_other_formats(tmp_path):
    png = read_image(SAMPLE_MR)
    assert png.spacing_source == "none"
    write_mask(tmp_path / "m.nii.gz", png.array > 0, reference=png)
    assert read_label(tmp_path / "m.nii.gz").spacing_source == "header"


# ---------------------------------------------------------------------------------------------
# placement of a single slice


def test_single_dicom_slice_written_as_nifti_keeps_position_and_orientation(tmp_path):
    source = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    angle = np.deg2rad(20)
    source.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, float(np.cos(angle)), float(np.sin(angle))]  # oblique
    dicom = tmp_path / "oblique.dcm"
    source.save_as(dicom)
    image = read_image(dicom)
    out = write_mask(tmp_path / "mask.nii.gz", image.array > 0, reference=image)
    written, gdcm = sitk.ReadImage(str(out)), sitk.ReadImage(str(dicom))  # GDCM's own reading of the slice
    np.testing.assert_allclose(written.GetOrigin(), gdcm.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(written.GetOrigin(), [float(v) for v in source.ImagePositionPatient], atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), gdcm.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(written.GetSpacing()[:2], gdcm.GetSpacing()[:2], rtol=1e-6)
    assert written.GetSize() == (128, 128, 1)


# ---------------------------------------------------------------------------------------------
# gray images stored as RGB


def test_gray_image_saved_as_rgb_is_read_as_gray(tmp_path):
    gray = np.asarray(Image.open(SAMPLE_MR))
    Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2)).save(tmp_path / "rgb.png")
    image = read_image(tmp_path / "rgb.png")
    assert not image.is_rgb
    np.testing.assert_array_equal(image.array, gray)
    assert default_preset("other", image.is_rgb).name == "percentile"


def test_a_real_colour_photo_stays_rgb(tmp_path):
    from skimage import data

    Image.fromarray(data.retina()[::8, ::8]).save(tmp_path / "fundus.png")
    assert read_image(tmp_path / "fundus.png").is_rgb


# ---------------------------------------------------------------------------------------------
# Hounsfield windows on data that are not HU


@pytest.mark.parametrize("kind", ["8-bit png", "hu + 1024"])
def test_ct_window_on_values_that_cannot_be_hu_warns(kind):
    hounsfield = read_image(pydicom_file("CT_small.dcm")).array
    if kind == "8-bit png":
        array = np.clip((hounsfield + 160) / 400 * 255, 0, 255).astype(np.uint8)
    else:
        array = (hounsfield + 1024).astype(np.uint16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_rgb_uint8(Image2D(array, path=kind), get_preset("ct_soft_tissue"))
    (warning,) = input_warnings(caught)
    assert warning.path == kind and "Hounsfield" in warning.problem


def test_ct_window_on_real_hounsfield_units_is_silent():
    image = read_image(pydicom_file("CT_small.dcm"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_rgb_uint8(image, default_preset(image.modality, image.is_rgb))
    assert input_warnings(caught) == []


def test_dicom_preset_follows_pydicoms_voi_lut():
    path = pydicom_file("MR_small.dcm")
    dataset = pydicom.dcmread(path)
    image = read_image(path)
    assert image.window == (600.0, 1600.0)
    windowed = apply_voi_lut(dataset.pixel_array, dataset)  # pydicom's linear VOI, output in the stored range
    bits = dataset.BitsStored
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if dataset.PixelRepresentation else (0, 2**bits - 1)
    expected = (windowed.astype(np.float64) - low) / (high - low) * 255
    got = to_rgb_uint8(image, get_preset("dicom"))[..., 0].astype(np.float64)
    assert np.abs(got - expected).max() <= 1.0


def test_dicom_preset_without_a_window_is_refused():
    from samia.errors import InvalidImageError

    with pytest.raises(InvalidImageError, match="window"):
        to_rgb_uint8(read_image(pydicom_file("CT_small.dcm")), get_preset("dicom"))


# ---------------------------------------------------------------------------------------------
# anti-aliased label maps


def test_resized_mask_is_flagged_as_anti_aliased(tmp_path):
    mask = (np.asarray(Image.open("samia/data/samples/colin27_aal_2d/masks/colin27_axial_025.png")) == 9) * 255
    blurred = resize(mask.astype(np.uint8), (300, 260), order=1, preserve_range=True).astype(np.uint8)
    Image.fromarray(blurred).save(tmp_path / "aa.png")
    labels, caught = _read_recording(tmp_path / "aa.png", read_label)
    assert len(np.unique(labels.array)) > 3
    (warning,) = caught
    assert "anti-aliased" in warning.problem and str(tmp_path / "aa.png") == warning.path


def test_a_mask_with_stray_edge_values_is_flagged(tmp_path):
    """The case of a 0/255 disk whose edge holds 1 and 254 (a lossy export): values 1, 254, 255."""
    yy, xx = np.mgrid[:80, :80]
    radius = np.hypot(yy - 40, xx - 37)
    disk = np.where(radius < 20, 255, 0).astype(np.uint8)
    edge = (radius >= 19.5) & (radius < 20.5)
    disk[edge] = np.random.default_rng(0).choice([1, 254], int(edge.sum()))
    Image.fromarray(disk).save(tmp_path / "disk.png")
    _, caught = _read_recording(tmp_path / "disk.png", read_label)
    (warning,) = caught
    assert "the values 1, 254 lie" in warning.problem


@pytest.mark.parametrize(
    "path",
    [
        *sorted(str(p) for p in Path("samia/data/samples/colin27_aal_2d/masks").glob("*.png")),
        "samia/data/samples/colin27_aal_3d/labelsTr/colin27.nii.gz",
    ],
)
def test_real_atlas_label_maps_are_not_flagged(path):
    """The AAL atlas has small regions between lower and higher labels (one piece each): not interpolation."""
    _, caught = _read_recording(path, read_label)
    assert caught == []
