"""DICOM: single-frame files through pydicom, multi-frame files and series folders through SimpleITK.

- A single-frame file is decoded by pydicom (compressed transfer syntaxes by pylibjpeg), with the
  Modality LUT / rescale slope and intercept applied to gray images and YBR colour converted to RGB.
- A multi-frame gray file and a folder holding one series are read by SimpleITK (GDCM), which sorts
  slices along the slice normal, applies the rescale and gives the 3D geometry in ITK's convention,
  the same one :mod:`samia.io.volume` reads and writes.

Read as a radiologist's viewer shows them:

- *MONOCHROME1* images (low values white, e.g. many chest CR/DX files) are inverted, so that high
  values are bright as in *MONOCHROME2*: the stored value ``s`` becomes ``lo + hi - s`` over the
  range ``[lo, hi]`` that *BitsStored* and *PixelRepresentation* allow, before the rescale; GDCM
  inverts series and multi-frame files the same way. The file's window is mirrored with them.
- Pixel spacing is *PixelSpacing*, else *ImagerPixelSpacing*; when neither gives two positive
  finite numbers, 1 mm is assumed, an :class:`~samia.errors.InputWarning` says so and the image's
  ``spacing_source`` is ``"fallback"``.
- A single slice keeps where it lies (*ImagePositionPatient*, *ImageOrientationPatient*,
  *SliceThickness*) as its :class:`~samia.types.Placement`, so a mask written as NIfTI overlays it.
- The first *WindowCenter* / *WindowWidth* pair is kept as the image's ``window`` (preset ``dicom``).

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

from samia.errors import CorruptFileError, InvalidImageError, UnsupportedFormatError, warn_input
from samia.io.dicom_series import series_slices, tag_numbers, tag_values
from samia.io.limits import check_declared_size
from samia.io.volume import from_sitk, read_volume
from samia.types import IDENTITY_DIRECTION_3D, Image2D, Placement, Volume, float_triple

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
          fractional rescale float64, no rescale the stored dtype; MONOCHROME1 inverted (module
          docstring);
        - one frame, colour (RGB, YBR_*, PALETTE COLOR): ``(H, W, 3)`` RGB Image2D (uint8, or the
          stored / palette bit depth);
        - several frames, gray: a :class:`~samia.types.Volume` read by SimpleITK.

        Spacing is ``(row, column)`` = ``(y, x)`` mm from *PixelSpacing*, else *ImagerPixelSpacing*,
        else ``(1.0, 1.0)`` with a warning. The modality comes from the *Modality* tag
        (:func:`samia_modality`); placement and window as the module docstring says.

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
            return replace(read_volume(path), modality=modality, window=_window(dataset))
        stored = pixel_array(dataset, as_rgb=True)
        window = None
        if photometric == "PALETTE COLOR":
            array = apply_color_lut(stored, dataset)
        elif is_colour:
            array = stored
        else:
            window = _window(dataset)
            if photometric == "MONOCHROME1":
                stored, window = _inverted(stored, window, dataset)
            array = apply_modality_lut(stored, dataset)
            if stored.dtype.kind in "iu":
                array = _integral_to_int32(array)
        spacing, spacing_source = _pixel_spacing(dataset, path)
        placement = _placement(dataset)
    except _DECODE_ERRORS as error:
        raise CorruptFileError(path, f"DICOM pixel data cannot be decoded ({error})") from error
    return Image2D(
        array,
        spacing=spacing,
        modality=modality,
        path=str(path),
        spacing_source=spacing_source,
        placement=placement,
        window=window,
    )


def read_dicom_series(folder: Path) -> Image2D | Volume:
    """Read a folder holding the files of one DICOM series as a volume.

    The headers are checked and the slices sorted along the slice normal first
    (:func:`samia.io.dicom_series.series_slices`: one series, one size, orientation and pixel
    spacing, distinct positions, no tilt, even gaps); SimpleITK (GDCM) then decodes them in that
    order, applies rescale slope / intercept (int32 when integral, else float64) and takes the slice
    spacing from the positions. Files that are not DICOM are ignored; sub-folders are not searched.

    Args:
        folder: an existing folder.

    Returns:
        A :class:`~samia.types.Volume` ``(Z, Y, X)`` with spacing ``(z, y, x)`` mm and ITK origin and
        direction; an :class:`~samia.types.Image2D` when the series has a single slice. The modality
        and the window come from the first file's *Modality* and *WindowCenter*/*WindowWidth*;
        MONOCHROME1 slices are inverted (by GDCM).

    Raises:
        MissingFileError: the folder holds no DICOM image series.
        InvalidImageError: the folder's files do not form one volume (the message names the series,
            the slice file and the rule broken); colour slices.
        CorruptFileError: SimpleITK cannot decode the slices.
    """
    slices = series_slices(folder)
    for item in slices:
        check_declared_size(item.path, item.size)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(item.path) for item in slices])
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise CorruptFileError(folder, f"DICOM series cannot be decoded by SimpleITK ({error})") from error
    header = slices[0].header
    return replace(from_sitk(image, folder), modality=samia_modality(header.get("Modality")), window=_window(header))


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
        missing = "; ".join(decoder.missing_dependencies)  # e.g. "gdcm - requires gdcm>=3.0.10"
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


def _pixel_spacing(dataset: Dataset, path: Path) -> tuple[tuple[float, float], str]:
    """``((row, column) mm, source)``: the first of *PixelSpacing*, *ImagerPixelSpacing* that holds two
    positive finite numbers; else ``((1.0, 1.0), "fallback")`` with a warning saying what was found."""
    if samia_modality(dataset.get("Modality")) == "US":
        return _ultrasound_spacing(dataset, path)
    found = []
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(keyword)
        if value is None:
            continue
        numbers = tag_numbers(value)
        if len(numbers) == 2 and all(np.isfinite(n) and n > 0 for n in numbers):
            return (numbers[0], numbers[1]), keyword
        single = not isinstance(value, (list, tuple, pydicom.multival.MultiValue))
        found.append(f"{keyword} = {value if single else tag_values(value)!r}")
    what = "; ".join(found) if found else "neither PixelSpacing nor ImagerPixelSpacing is present"
    warn_input(path, f"no usable pixel spacing ({what}); 1 mm x 1 mm assumed, distances in mm are in pixels")
    return (1.0, 1.0), "fallback"


ULTRASOUND_CM = 3
"""*PhysicalUnitsXDirection* / *PhysicalUnitsYDirection* value meaning centimetres."""


def _ultrasound_spacing(dataset: Dataset, path: Path) -> tuple[tuple[float, float], str]:
    """An ultrasound image's spacing: the first region of *SequenceOfUltrasoundRegions* measured in cm
    on both axes (*PhysicalDeltaY*, *PhysicalDeltaX* x 10 = mm), else pixels (``"none"``) with a
    warning; *PixelSpacing* is not used, since scanners fill it inconsistently for ultrasound."""
    for region in dataset.get("SequenceOfUltrasoundRegions") or []:
        units = (region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection"))
        deltas = tag_numbers(region.get("PhysicalDeltaY")) + tag_numbers(region.get("PhysicalDeltaX"))
        if (
            units == (ULTRASOUND_CM, ULTRASOUND_CM)
            and len(deltas) == 2
            and all(np.isfinite(deltas) & (np.array(deltas) > 0))
        ):
            return (abs(deltas[0]) * 10.0, abs(deltas[1]) * 10.0), "SequenceOfUltrasoundRegions"
    warn_input(
        path,
        "ultrasound image without a calibrated region in cm (SequenceOfUltrasoundRegions); distances are in pixels",
    )
    return (1.0, 1.0), "none"


def _placement(dataset: Dataset) -> Placement | None:
    """The slice's position and orientation, when *ImagePositionPatient* and *ImageOrientationPatient*
    are both valid (the normal is the cross product of the row and column directions)."""
    position = tag_numbers(dataset.get("ImagePositionPatient"))
    orientation = tag_numbers(dataset.get("ImageOrientationPatient"))
    if len(position) != 3 or not np.isfinite(position).all():
        return None
    if len(orientation) == 6 and np.isfinite(orientation).all():
        row, column = np.array(orientation[:3]), np.array(orientation[3:])
        normal = np.cross(row, column)
        if np.linalg.norm(normal) < 1e-6:
            return None
        direction = tuple(float(v) for v in np.stack([row, column, normal / np.linalg.norm(normal)], axis=1).ravel())
    else:
        direction = IDENTITY_DIRECTION_3D
    thickness = tag_numbers(dataset.get("SliceThickness"))
    valid_thickness = len(thickness) == 1 and np.isfinite(thickness[0]) and thickness[0] > 0
    return Placement(float_triple(position), direction, thickness[0] if valid_thickness else 1.0)


def _window(dataset: Dataset) -> tuple[float, float] | None:
    """``(center, width)``: the first *WindowCenter* / *WindowWidth* pair, when valid (width > 0)."""
    centers, widths = tag_numbers(dataset.get("WindowCenter")), tag_numbers(dataset.get("WindowWidth"))
    if not centers or not widths or not (np.isfinite(centers[0]) and np.isfinite(widths[0]) and widths[0] > 0):
        return None
    return centers[0], widths[0]


def _inverted(
    stored: np.ndarray, window: tuple[float, float] | None, dataset: Dataset
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """MONOCHROME1 -> MONOCHROME2: ``lo + hi - s`` over the stored range; the window mirrored alike."""
    bits = int(dataset.get("BitsStored") or stored.dtype.itemsize * 8)
    signed = int(dataset.get("PixelRepresentation") or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    inverted = (low + high - stored.astype(np.int64)).astype(stored.dtype)
    if window is not None:
        slope = float(dataset.get("RescaleSlope", 1) or 1)
        intercept = float(dataset.get("RescaleIntercept", 0) or 0)
        window = (slope * (low + high) + 2 * intercept - window[0], window[1])
    return inverted, window
