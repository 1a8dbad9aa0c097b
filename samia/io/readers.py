"""One entry point for every image and label file: dispatch by ending, then validate.

``read_image`` picks the reader from the file ending (:func:`samia.io.formats.file_suffix`); a folder
is read as a DICOM series, and a file with an unknown ending that starts like a DICOM file is read as
DICOM. Every problem is raised as a subclass of :class:`samia.errors.InputError` naming the path;
what is probably wrong but readable is an :class:`samia.errors.InputWarning`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from samia.errors import (
    ConfigurationError,
    InvalidImageError,
    InvalidLabelError,
    MissingFileError,
    UnsupportedFormatError,
    warn_input,
)
from samia.io.formats import (
    DICOM_SUFFIXES,
    IMAGE_2D_SUFFIXES,
    NPZ_SUFFIXES,
    SUPPORTED_SUFFIXES,
    VOLUME_SUFFIXES,
    file_suffix,
)
from samia.io.image2d import read_image_2d
from samia.io.npz import IMAGE_KEY, LABEL_KEY, read_npz
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
        slice gives an Image2D. A gray image stored as RGB (three equal channels, e.g. an MR slice
        exported as a colour PNG) is returned as gray ``(H, W)``, so it gets a gray preset. A
        constant image is returned as is (it is rejected later, by the intensity presets that need
        a range).

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
    image = _gray_if_equal_channels(_read_checked(Path(path), keep_palette_indices=False))
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
        from samia.io.volume import read_volume_slice

        plane = read_volume_slice(path, index, axis)
        _check_pixels(plane, path)
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
    valid here; whether an object is present is decided per object elsewhere. A label map that
    looks anti-aliased (:func:`interpolated_values`) is read as it is, with an
    :class:`~samia.errors.InputWarning`: each of its values is an object.

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
    labels = array.astype(np.min_scalar_type(int(array.max())))
    fringe = interpolated_values(labels)
    if fringe:
        shown = ", ".join(map(str, fringe[:8])) + (f" and {len(fringe) - 8} more" if len(fringe) > 8 else "")
        warn_input(
            image.path or path,
            f"label map looks anti-aliased: the values {shown} lie almost only on edges between lower and higher "
            "values, as resizing or smoothing a mask leaves them; each is evaluated as an object. Save masks "
            "with nearest-neighbour interpolation",
        )
    return replace(image, array=labels)


FRINGE_FRACTION = 0.9
"""A label value whose pixels lie this often (or more) between a lower and a higher value is a fringe value."""

FRINGE_VALUES = 3
"""This many fringe values, or one fringe value scattered in this many pieces, make a map look interpolated."""


def interpolated_values(labels: np.ndarray) -> list[int]:
    """The label values that look like interpolation between other values, sorted.

    A value ``v > 0`` is a *fringe* value when at least :data:`FRINGE_FRACTION` of its pixels have,
    among their 8 in-plane neighbours, both a value below ``v`` and a value above ``v``: what resizing
    a 0/255 mask with bilinear interpolation, or saving it as JPEG, leaves along its edges
    (``0, 1, 254, 255``). Objects of a true label map are mostly interior pixels; a small true label
    between a lower and a higher one (an atlas region on its last slice) is one fringe value in one
    piece. So the map looks interpolated when it has at least :data:`FRINGE_VALUES` fringe values,
    or a fringe value scattered in at least :data:`FRINGE_VALUES` 8-connected pieces; then all its
    fringe values are returned.

    Args:
        labels: ``(H, W)`` or ``(Z, Y, X)`` non-negative integer label map (neighbours within a
            slice of a volume).
    """
    values = np.unique(labels)
    if np.count_nonzero(values) < 2:  # a binary mask has nothing to sit between
        return []
    from scipy import ndimage

    footprint = np.ones((3, 3) if labels.ndim == 2 else (1, 3, 3), dtype=bool)
    lower = ndimage.grey_erosion(labels, footprint=footprint, mode="nearest") < labels
    higher = ndimage.grey_dilation(labels, footprint=footprint, mode="nearest") > labels
    index = np.searchsorted(values, labels)
    sandwiched = np.bincount(index[lower & higher], minlength=len(values))
    counts = np.bincount(index.ravel(), minlength=len(values))
    fringe = [int(v) for v, n, c in zip(values, sandwiched, counts) if v > 0 and n >= FRINGE_FRACTION * c]
    connectivity = np.ones((3, 3), dtype=bool)
    if labels.ndim == 3:  # 8-connected within a slice
        connectivity = np.stack([np.zeros((3, 3), bool), connectivity, np.zeros((3, 3), bool)])
    scattered = any(ndimage.label(labels == v, structure=connectivity)[1] >= FRINGE_VALUES for v in fringe)
    return fringe if len(fringe) >= FRINGE_VALUES or scattered else []


def _gray_if_equal_channels(image: Image2D | Volume) -> Image2D | Volume:
    """An RGB image whose three channels are equal, as the gray image it is."""
    if not (isinstance(image, Image2D) and image.is_rgb):
        return image
    array = image.array
    if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2]):
        return replace(image, array=np.ascontiguousarray(array[..., 0]))
    return image


def _read_checked(path: Path, keep_palette_indices: bool) -> Image2D | Volume:
    image = _dispatch(path, keep_palette_indices)
    _check_pixels(image, path)
    return image


def _check_pixels(image: Image2D | Volume, path: Path) -> None:
    """Refuse an empty image or one holding NaN/Inf pixels."""
    array = image.array
    if array.size == 0:
        raise InvalidImageError(path, f"image array is empty (shape {array.shape})")
    if array.dtype.kind in "fc":
        nonfinite = array.size - int(np.count_nonzero(np.isfinite(array)))
        if nonfinite:
            raise InvalidImageError(path, f"contains {nonfinite} NaN/Inf pixels")


def _dispatch(path: Path, keep_palette_indices: bool) -> Image2D | Volume:
    """Read ``path`` with the reader of its format (DICOM and volume libraries are imported only for
    their files, so reading a PNG stays quick to start)."""
    if not path.exists():
        if path.is_symlink():
            raise MissingFileError(path, "is a symbolic link whose target is missing or loops back to itself")
        raise MissingFileError(path, "no such file or folder")
    if path.is_dir():
        from samia.io.dicom import read_dicom_series

        return read_dicom_series(path)
    suffix = file_suffix(path)
    if suffix in IMAGE_2D_SUFFIXES:
        return read_image_2d(path, keep_palette_indices)
    if suffix in VOLUME_SUFFIXES:
        from samia.io.volume import read_volume

        return read_volume(path)
    if suffix in NPZ_SUFFIXES:
        return read_npz(path, LABEL_KEY if keep_palette_indices else IMAGE_KEY)  # labels are read keeping indices
    from pydicom.misc import is_dicom

    from samia.io.dicom import read_dicom_file

    if suffix in DICOM_SUFFIXES or is_dicom(path):
        return read_dicom_file(path)
    raise UnsupportedFormatError(
        path,
        f"unsupported file ending {suffix!r}; samia reads {', '.join(SUPPORTED_SUFFIXES)}, "
        "DICOM files and folders holding one DICOM series",
    )
