"""DICOM: single-frame files through pydicom, multi-frame files and series folders through SimpleITK.

- A single-frame file is decoded by pydicom (compressed transfer syntaxes by pylibjpeg), with the
  Modality LUT / rescale slope and intercept applied to gray images and YBR colour converted to RGB.
- A multi-frame gray file and a folder holding one series are read by SimpleITK (GDCM), which sorts
  slices along the slice normal, applies the rescale and gives the 3D geometry in ITK's convention,
  the same one :mod:`samia.io.volume` reads and writes.

The DICOM ``Modality`` tag is mapped onto :data:`samia.types.MODALITIES` by :func:`samia_modality`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array

from samia.errors import CorruptFileError, InvalidImageError, MissingFileError, UnsupportedFormatError
from samia.io.limits import check_declared_size
from samia.io.volume import from_sitk, read_volume
from samia.types import Image2D, Volume

DICOM_MODALITIES = {
    "CT": "CT",
    "MR": "MR",
    "US": "US",
    "CR": "XR",
    "DX": "XR",
    "MG": "XR",
    "PT": "PET",
    "OP": "fundus",
    "ES": "endoscopy",
    "OPT": "OCT",
    "SM": "microscopy",
}
"""DICOM ``Modality`` tag value -> samia modality; any other value maps to ``"other"``."""

SLICE_SPACING_TOLERANCE = 0.01
"""Largest deviation of one slice gap from the mean gap in a series, relative to the mean (1 %)."""

_NON_UNIFORM_KEY = "ITK_non_uniform_sampling_deviation"
_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DECODE_ERRORS = (ValueError, RuntimeError, AttributeError, KeyError, EOFError)
"""What pydicom raises when pixel data is truncated, malformed or inconsistent with its header."""


def samia_modality(dicom_modality: str | None) -> str:
    """Map a DICOM ``Modality`` value (``"CT"``, ``"DX"``, ...) onto a samia modality, else ``"other"``."""
    return DICOM_MODALITIES.get(str(dicom_modality or "").strip().upper(), "other")


def read_dicom_file(path: Path) -> Image2D | Volume:
    """Read one DICOM file.

    Args:
        path: an existing DICOM Part 10 file.

    Returns:
        - one frame, gray: ``(H, W)`` :class:`~samia.types.Image2D` after the Modality LUT / rescale
          (e.g. Hounsfield units for CT): integer pixels with an integral rescale give int32, a
          fractional rescale float64, no rescale the stored dtype; MONOCHROME1 values are kept as
          stored (not inverted);
        - one frame, colour (RGB, YBR_*, PALETTE COLOR): ``(H, W, 3)`` RGB Image2D (uint8, or the
          stored / palette bit depth);
        - several frames, gray: a :class:`~samia.types.Volume` read by SimpleITK.

        Spacing is ``(row, column)`` = ``(y, x)`` mm from *PixelSpacing*, else *ImagerPixelSpacing*,
        else ``(1.0, 1.0)``. The modality comes from the *Modality* tag (:func:`samia_modality`).

    Raises:
        CorruptFileError: not a DICOM file, or its pixel data cannot be decoded (e.g. truncated).
        UnsupportedFormatError: no installed decoder handles the file's transfer syntax.
        InvalidImageError: no pixel data (a report, a plan), or a multi-frame colour file (a video).
    """
    dataset = _read_dataset(path, header_only=False)
    if not any(keyword in dataset for keyword in _PIXEL_DATA_KEYWORDS):
        raise InvalidImageError(
            path, f"DICOM file has no pixel data (Modality {dataset.get('Modality')!r}); it is not an image"
        )
    modality = samia_modality(dataset.get("Modality"))
    _check_decoder(dataset, path)
    check_declared_size(
        path, (int(dataset.get("NumberOfFrames") or 1), int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0))
    )
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
        photometric = str(dataset.get("PhotometricInterpretation", ""))
        is_colour = int(dataset.get("SamplesPerPixel") or 1) > 1 or photometric == "PALETTE COLOR"
        if frames > 1:
            if is_colour:
                raise InvalidImageError(
                    path,
                    f"is a colour video ({frames} frames); samia reads single colour frames and gray volumes",
                )
            return replace(read_volume(path), modality=modality)
        stored = pixel_array(dataset, as_rgb=True)
        if photometric == "PALETTE COLOR":
            array = apply_color_lut(stored, dataset)
        elif is_colour:
            array = stored
        else:
            array = apply_modality_lut(stored, dataset)
            if stored.dtype.kind in "iu":
                array = _integral_to_int32(array)
        spacing = _pixel_spacing(dataset)
    except _DECODE_ERRORS as error:
        raise CorruptFileError(path, f"DICOM pixel data cannot be decoded ({error})") from error
    return Image2D(array, spacing=spacing, modality=modality, path=str(path))


def read_dicom_series(folder: Path) -> Image2D | Volume:
    """Read a folder holding the files of one DICOM series as a volume (SimpleITK / GDCM).

    Slices are sorted by *ImagePositionPatient* along the slice normal; the slice spacing comes from
    the positions; rescale slope / intercept are applied (int32 when integral, else float64). Files
    that are not DICOM are ignored; sub-folders are not searched.

    Args:
        folder: an existing folder.

    Returns:
        A :class:`~samia.types.Volume` ``(Z, Y, X)`` with spacing ``(z, y, x)`` mm and ITK origin and
        direction; an :class:`~samia.types.Image2D` when the series has a single slice. The modality
        comes from the first file's *Modality* tag.

    Raises:
        MissingFileError: the folder holds no DICOM image series.
        InvalidImageError: several series (different *SeriesInstanceUID*) in one folder; slice gaps
            that differ by more than :data:`SLICE_SPACING_TOLERANCE` of the mean gap (a missing or
            duplicated slice); colour slices.
        CorruptFileError: SimpleITK cannot decode the slices.
    """
    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise MissingFileError(folder, "folder contains no DICOM image series")
    if len(series_ids) > 1:
        raise InvalidImageError(
            folder,
            f"folder contains {len(series_ids)} DICOM series (different SeriesInstanceUIDs); "
            "put each series in its own folder",
        )
    files = reader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
    reader.SetFileNames(files)
    reader.SetSpacingWarningRelThreshold(SLICE_SPACING_TOLERANCE)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise CorruptFileError(folder, f"DICOM series cannot be decoded by SimpleITK ({error})") from error
    if image.HasMetaDataKey(_NON_UNIFORM_KEY):
        raise InvalidImageError(
            folder,
            f"the {len(files)} slices are not evenly spaced (a gap differs from the mean gap of "
            f"{image.GetSpacing()[2]:.4g} mm by more than {SLICE_SPACING_TOLERANCE:.0%}); "
            "a slice may be missing or duplicated",
        )
    modality = samia_modality(_read_dataset(Path(files[0]), header_only=True).get("Modality"))
    return replace(from_sitk(image, folder), modality=modality)


def _read_dataset(path: Path, header_only: bool) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except (InvalidDicomError, EOFError, OSError, ValueError) as error:
        raise CorruptFileError(path, f"cannot be read as DICOM ({error})") from error


def _check_decoder(dataset: Dataset, path: Path) -> None:
    """Raise :class:`UnsupportedFormatError` when no installed pydicom decoder handles the transfer syntax."""
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is None:
        return  # pydicom reports the missing syntax itself when decoding
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as error:
        raise UnsupportedFormatError(path, f"DICOM pixel data cannot be decoded ({error})") from error
    if not decoder.is_available:
        missing = "; ".join(f"{name}: {', '.join(deps)}" for name, deps in decoder.missing_dependencies.items())
        raise UnsupportedFormatError(
            path, f"decoding {syntax.name} pixel data needs a package that is not installed ({missing})"
        )


def _integral_to_int32(array: np.ndarray) -> np.ndarray:
    """Rescaled integer pixels (pydicom gives float64) back to int32 when every value is an integer that
    fits, as ITK does for series; other arrays unchanged."""
    if array.dtype != np.float64 or array.size == 0:
        return array
    info = np.iinfo(np.int32)
    if array.min() >= info.min and array.max() <= info.max and np.all(np.mod(array, 1) == 0):
        return array.astype(np.int32)
    return array


def _pixel_spacing(dataset: Dataset) -> tuple[float, float]:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(keyword)
        if value is not None and len(value) == 2:
            return (float(value[0]), float(value[1]))
    return (1.0, 1.0)
