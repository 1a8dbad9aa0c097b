"""One entry point for every image and label file: dispatch by ending, then validate.

``read_image`` picks the reader from the file ending (:func:`samia.io.formats.file_suffix`); a folder
is read as a DICOM series, and a file with an unknown ending that starts like a DICOM file is read as
DICOM. Every problem is raised as a subclass of :class:`samia.errors.InputError` naming the path.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from pydicom.misc import is_dicom

from samia.errors import (
    ConfigurationError,
    InvalidImageError,
    InvalidLabelError,
    MissingFileError,
    UnsupportedFormatError,
)
from samia.io.dicom import read_dicom_file, read_dicom_series
from samia.io.formats import (
    DICOM_SUFFIXES,
    IMAGE_2D_SUFFIXES,
    SUPPORTED_SUFFIXES,
    VOLUME_SUFFIXES,
    file_suffix,
)
from samia.io.image2d import read_image_2d
from samia.io.volume import read_volume, read_volume_slice
from samia.types import MODALITIES, Image2D, Volume


def read_image(path: str | Path, modality: str | None = None) -> Image2D | Volume:
    """Read an image file or a DICOM series folder, with its geometry.

    Args:
        path: a 2D file (PNG, JPEG, BMP, TIFF), a volume file (NIfTI, NRRD, MHA/MHD), a DICOM file, or
            a folder holding one DICOM series.
        modality: one of :data:`samia.types.MODALITIES`; overrides the file's own (DICOM *Modality*
            tag). Default: the file's, else ``"other"``.

    Returns:
        An :class:`~samia.types.Image2D` (``(H, W)`` gray or ``(H, W, 3)`` RGB, spacing ``(y, x)`` mm)
        or a :class:`~samia.types.Volume` (``(Z, Y, X)``, spacing ``(z, y, x)`` mm, ITK origin and
        direction). Raw intensities in the stored dtype (DICOM: after rescale). A 3D file with one
        slice gives an Image2D. A constant image is returned as is (it is rejected later, by the
        intensity presets that need a range).

    Raises:
        ConfigurationError: ``modality`` is not one of :data:`~samia.types.MODALITIES`.
        MissingFileError: no such file or folder; a folder without DICOM series.
        UnsupportedFormatError: an ending samia does not read (the message lists those it does).
        CorruptFileError: content that cannot be decoded (truncated, garbage).
        InvalidImageError: NaN/Inf pixels, an empty or 1D array, more than 3 dimensions (4D NIfTI),
            a multi-page TIFF, several DICOM series in one folder, uneven DICOM slice spacing.
    """
    if modality is not None and modality not in MODALITIES:
        raise ConfigurationError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    image = _read_checked(Path(path), keep_palette_indices=False)
    return image if modality is None else replace(image, modality=modality)


def read_image_slice(path: str | Path, index: int, axis: int = 0, modality: str | None = None) -> Image2D:
    """Slice ``index`` along ``axis`` of a volume, read without the rest where the format allows it
    (NIfTI, NRRD, MHA); other volumes (DICOM series, multi-frame DICOM) are read whole and sliced.

    Returns what ``read_image(path).slice(index, axis)`` returns (the same checks on the slice).

    Raises:
        InvalidImageError: the file is 2D, or ``axis``/``index`` are outside the volume; everything
            :func:`read_image` raises.
    """
    path = Path(path)
    if modality is not None and modality not in MODALITIES:
        raise ConfigurationError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    if path.is_file() and file_suffix(path) in VOLUME_SUFFIXES:
        plane = _checked(read_volume_slice(path, index, axis), path)
    else:
        volume = read_image(path)
        if not isinstance(volume, Volume):
            raise InvalidImageError(path, f"is a 2D image {volume.shape}: it has no slices")
        plane = volume.slice(index, axis)
    return plane if modality is None else replace(plane, modality=modality)


def read_label(path: str | Path) -> Image2D | Volume:
    """Read a label map (or a mask) with its geometry, as :func:`read_image` does, and check its values.

    Palette PNG/TIFF files give their palette indices (the label values), not colours. An RGB file
    is accepted only when its three channels are equal (one is kept). Float arrays (common for NIfTI
    labels saved as float) are accepted when every value is an integer. An all-zero label map is
    valid here; whether an object is present is decided per object elsewhere.

    Returns:
        An Image2D ``(H, W)`` or a Volume ``(Z, Y, X)`` whose array has the smallest unsigned integer
        dtype that holds the largest label (uint8, uint16, uint32; uint64 beyond that).

    Raises:
        everything :func:`read_image` raises, and
        InvalidLabelError: RGB with differing channels, non-integer values, negative values.
    """
    image = _read_checked(Path(path), keep_palette_indices=True)
    array = image.array
    if isinstance(image, Image2D) and image.is_rgb:
        if not (np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2])):
            raise InvalidLabelError(
                image.path or path,
                "label map is RGB with differing channels; save labels as one integer channel "
                "(gray or palette PNG, NIfTI)",
            )
        array = array[..., 0]
    if array.dtype.kind == "f":
        fractional = array[np.mod(array, 1) != 0]
        if fractional.size:
            raise InvalidLabelError(image.path or path, f"label map has non-integer values, e.g. {fractional[0]:g}")
    minimum = array.min()
    if minimum < 0:
        raise InvalidLabelError(image.path or path, f"label map has negative values, e.g. {minimum:g}")
    return replace(image, array=array.astype(np.min_scalar_type(int(array.max()))))


def _read_checked(path: Path, keep_palette_indices: bool) -> Image2D | Volume:
    return _checked(_dispatch(path, keep_palette_indices), path)


def _checked(image: Image2D | Volume, path: Path) -> Image2D | Volume:
    array = image.array
    if array.size == 0:
        raise InvalidImageError(path, f"image array is empty (shape {array.shape})")
    if array.dtype.kind in "fc":
        nonfinite = array.size - int(np.count_nonzero(np.isfinite(array)))
        if nonfinite:
            raise InvalidImageError(path, f"contains {nonfinite} NaN/Inf pixels")
    return image


def _dispatch(path: Path, keep_palette_indices: bool) -> Image2D | Volume:
    if not path.exists():
        raise MissingFileError(path, "no such file or folder")
    if path.is_dir():
        return read_dicom_series(path)
    suffix = file_suffix(path)
    if suffix in IMAGE_2D_SUFFIXES:
        return read_image_2d(path, keep_palette_indices)
    if suffix in VOLUME_SUFFIXES:
        return read_volume(path)
    if suffix in DICOM_SUFFIXES or is_dicom(path):
        return read_dicom_file(path)
    raise UnsupportedFormatError(
        path,
        f"unsupported file ending {suffix!r}; samia reads {', '.join(SUPPORTED_SUFFIXES)}, "
        "DICOM files and folders holding one DICOM series",
    )
