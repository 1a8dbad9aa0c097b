"""Shared fixtures for the io tests: a non-trivial 3D geometry and a DICOM series writer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from clinical_files import new_dataset, pydicom_file
from pydicom.uid import CTImageStorage, generate_uid

from samia.types import Volume


def _rotation(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 rotation matrix (Rodrigues) about ``axis`` by ``degrees``."""
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    theta = np.deg2rad(degrees)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * cross + (1 - np.cos(theta)) * cross @ cross


@pytest.fixture
def oblique_volume() -> Volume:
    """A ``(4, 5, 6)`` int16 ramp with anisotropic spacing, an offset origin and a rotated direction."""
    array = (np.arange(4 * 5 * 6, dtype=np.int16) * 7 - 300).reshape(4, 5, 6)
    direction = _rotation((1.0, 2.0, 3.0), 30.0)
    return Volume(
        array,
        spacing=(3.0, 0.7, 0.8),
        origin=(-12.5, 40.25, 7.0),
        direction=tuple(float(v) for v in direction.ravel()),
        modality="CT",
        path="oblique",
    )


SeriesWriter = Callable[..., np.ndarray]


@pytest.fixture
def write_ct_series() -> SeriesWriter:
    """Write a small CT series with pydicom; returns the stored (pre-rescale) ``(Z, 4, 6)`` int16 pixels.

    Arguments: ``folder``, ``positions`` (one ImagePositionPatient per slice, in slice order),
    ``file_order`` (slice index written to file 0, 1, ...), ``slope``, ``intercept``,
    ``series_uid`` (shared by all slices), ``orientation`` (ImageOrientationPatient).
    """

    def write(
        folder: Path,
        positions: Sequence[Sequence[float]],
        file_order: Sequence[int] | None = None,
        slope: float = 2.0,
        intercept: float = -1024.0,
        series_uid: str | None = None,
        orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    ) -> np.ndarray:
        folder.mkdir(parents=True, exist_ok=True)
        stored = (np.arange(len(positions) * 24, dtype=np.int16) * 3).reshape(len(positions), 4, 6)
        series_uid = series_uid or generate_uid()
        study_uid = generate_uid()
        for number, index in enumerate(file_order if file_order is not None else range(len(positions))):
            ds = new_dataset(CTImageStorage, "CT")
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.InstanceNumber = number + 1
            ds.Rows, ds.Columns = 4, 6
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelSpacing = [0.7, 0.8]
            ds.ImageOrientationPatient = [float(v) for v in orientation]
            ds.ImagePositionPatient = [float(v) for v in positions[index]]
            ds.RescaleSlope = slope
            ds.RescaleIntercept = intercept
            ds.PixelData = stored[index].tobytes()
            ds.save_as(folder / f"file{number:03d}.dcm", enforce_file_format=True)
        return stored

    return write


@pytest.fixture
def dicom_file() -> Callable[[str], Path]:
    """``dicom_file(name)`` -> path of a pydicom bundled test file (skips if absent)."""
    return pydicom_file
