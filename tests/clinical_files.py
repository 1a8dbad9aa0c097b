"""Realistic clinical files for the tests: pydicom's bundled real DICOMs, and DICOMs written here."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from samia.errors import InputWarning


def pydicom_file(name: str) -> Path:
    """A file bundled with pydicom (no download); skips the test if this pydicom lacks it."""
    matches = [Path(p) for p in pydicom.data.get_testdata_files(name) if Path(p).name == name]
    if not matches:
        pytest.skip(f"pydicom's bundled test file {name} is not available offline in this install")
    return matches[0]


def new_dataset(sop_class: str, modality: str) -> Dataset:
    """An empty DICOM instance of ``sop_class`` (explicit VR little endian) with fresh UIDs."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientID = "synthetic"
    return ds


def write_dicom(path: Path, stored: np.ndarray, modality: str = "CR", **tags: Any) -> Path:
    """Write a single-frame gray DICOM of ``stored`` (uint16 or int16) with ``tags`` (keyword=value;
    a value of None removes the tag); 12 bits stored for uint16 unless ``BitsStored`` says otherwise."""
    ds = new_dataset(SecondaryCaptureImageStorage, modality)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    signed = stored.dtype.kind == "i"
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelSpacing = [0.5, 0.5]
    for keyword, value in tags.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.HighBit = int(ds.BitsStored) - 1
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def chest_like(shape: tuple[int, int] = (96, 80), seed: int = 0) -> np.ndarray:
    """A 12-bit radiograph-like uint16 image: a bright body with two darker lung fields and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 400.0)
    body = ((yy - shape[0] / 2) / (0.45 * shape[0])) ** 2 + ((xx - shape[1] / 2) / (0.45 * shape[1])) ** 2 < 1
    image[body] = 2600.0
    for centre in (0.3, 0.7):
        lung = ((yy - shape[0] / 2) / (0.3 * shape[0])) ** 2 + ((xx - centre * shape[1]) / (0.13 * shape[1])) ** 2 < 1
        image[lung] = 1200.0
    image += rng.normal(0, 40, shape)
    return np.clip(image, 0, 4095).astype(np.uint16)


def input_warnings(caught: list[warnings.WarningMessage]) -> list[InputWarning]:
    """The :class:`InputWarning` among recorded warnings."""
    return [w.message for w in caught if isinstance(w.message, InputWarning)]


def write_ct_series(
    folder: Path,
    hounsfield: np.ndarray,
    spacing: tuple[float, float, float] = (2.5, 0.7, 0.8),
    origin: tuple[float, float, float] = (-40.0, -30.0, 12.5),
    series_uid: str | None = None,
    series_number: int = 3,
) -> list[Path]:
    """Write ``hounsfield`` ``(Z, Y, X)`` as a CT series (one file per slice, axial, z ascending,
    rescale -1024) with the attributes a DICOM-SEG needs to reference it; returns the files."""
    from pydicom.uid import CTImageStorage

    folder.mkdir(parents=True, exist_ok=True)
    study, frame_of_reference = generate_uid(), generate_uid()
    series_uid = series_uid or generate_uid()
    paths = []
    for index, plane in enumerate(hounsfield):
        ds = new_dataset(CTImageStorage, "CT")
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame_of_reference
        ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "Synthetic^Phantom", "19700101", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
        ds.ReferringPhysicianName, ds.Manufacturer = "", "samia tests"
        ds.SeriesNumber, ds.InstanceNumber = series_number, index + 1
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + index * spacing[0]]
        ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
        ds.PixelData = (np.asarray(plane, dtype=np.int32) + 1024).astype(np.int16).tobytes()
        path = folder / f"slice{index:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
