"""Distances are labelled in the unit they were measured in: px where an image has no physical
spacing, "mm at the detector" for ImagerPixelSpacing alone, ultrasound calibrated from its regions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from clinical_files import input_warnings, write_dicom
from pydicom.dataset import Dataset

from samia.io import read_image
from samia.types import distance_unit


def _region(delta_x: float, delta_y: float, units: int = 3) -> Dataset:
    region = Dataset()
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = units, units
    region.PhysicalDeltaX, region.PhysicalDeltaY = delta_x, delta_y
    return region


def test_ultrasound_spacing_comes_from_its_calibrated_region(tmp_path) -> None:
    path = write_dicom(
        tmp_path / "us.dcm", np.zeros((20, 30), np.uint16), modality="US", PixelSpacing=[9.0, 9.0],
        SequenceOfUltrasoundRegions=[_region(0.012, 0.015)],
    )  # fmt: skip
    image = read_image(path)
    assert image.spacing == pytest.approx((0.15, 0.12)) and image.spacing_source == "SequenceOfUltrasoundRegions"


def test_ultrasound_without_a_region_in_cm_is_pixels(tmp_path) -> None:
    path = write_dicom(
        tmp_path / "us.dcm", np.zeros((20, 30), np.uint16), modality="US", PixelSpacing=[0.2, 0.2],
        SequenceOfUltrasoundRegions=[_region(1.0, 1.0, units=0)],
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = read_image(path)
    assert image.spacing_source == "none" and distance_unit([image.spacing_source]) == "px"
    assert any("distances are in pixels" in w.problem for w in input_warnings(caught))


def test_imager_pixel_spacing_alone_is_mm_at_the_detector(tmp_path) -> None:
    path = write_dicom(
        tmp_path / "cr.dcm", np.zeros((20, 30), np.uint16), PixelSpacing=None, ImagerPixelSpacing=[0.14, 0.14]
    )
    assert distance_unit([read_image(path).spacing_source]) == "mm at the detector"


def test_units_of_mixed_and_plain_sources() -> None:
    assert distance_unit(["none", "none"]) == "px"
    assert distance_unit(["header", "PixelSpacing"]) == "mm"
    assert distance_unit(["header", "none"]) == "mixed units"


def test_headline_and_report_say_px_for_pngs(tmp_path, cli) -> None:
    from PIL import Image

    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for index in range(2):
        mask = np.zeros((48, 48), np.uint8)
        mask[8 + index : 30, 10:34] = 1
        Image.fromarray((mask * 150 + 40).astype(np.uint8)).save(data / "images" / f"c{index}.png")
        Image.fromarray(mask).save(data / "masks" / f"c{index}.png")
    run = tmp_path / "run"
    code, stdout, stderr = cli("evaluate", "--data", data, "--model", "tiny_sam", "--out", run, "--strategy", "box")
    assert code == 0, stderr
    assert "HD95: the median, in px" in stdout and "HD95 px" in stdout and "HD95 mm" not in stdout
    code, _, stderr = cli("report", run, "--out", tmp_path / "report")
    assert code == 0, stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "HD95 median (px)" in html and "HD95 median (mm)" not in html
