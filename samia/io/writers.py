"""Writing masks and label maps, with the geometry of the image they belong to, atomically.

The format follows the ending of the path: ``.png``/``.tif``/``.tiff`` for 2D arrays (no geometry),
``.nii.gz``/``.nii``/``.nrrd``/``.mha`` for 2D or 3D arrays with spacing (and, for a volume
reference, origin and direction) written by SimpleITK. Lossy formats (JPEG) are refused. Each file is
written under a temporary name in its destination folder and then renamed over the destination
(``os.replace``), so a run killed mid-write leaves either the old file or the new one, never half a file.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from samia.errors import GeometryMismatchError, InvalidLabelError, UnsupportedFormatError
from samia.files import atomic_write
from samia.io.formats import WRITABLE_2D_SUFFIXES, WRITABLE_VOLUME_SUFFIXES, file_suffix
from samia.io.image2d import write_image_2d
from samia.types import Image2D, Volume


def write_mask(path: str | Path, mask: np.ndarray, reference: Image2D | Volume | None = None) -> Path:
    """Write one binary mask.

    Args:
        path: destination; its ending picks the format (see the module docstring). Missing parent
            folders are created; an existing file is replaced.
        mask: ``(H, W)`` or ``(Z, Y, X)`` bool array.
        reference: the image the mask belongs to; its shape must equal ``mask.shape`` (channels of an
            RGB image excluded). Volume formats take its spacing (and a Volume's origin and direction).

    Returns:
        ``path`` as a :class:`~pathlib.Path`. Stored values: 0/255 uint8 in PNG/TIFF (visible in any
        viewer), 0/1 uint8 in volume formats (the NIfTI convention).

    Raises:
        TypeError: ``mask`` is not bool.
        GeometryMismatchError: ``mask.shape`` differs from ``reference.shape``.
        UnsupportedFormatError: an ending samia does not write, or a 3D mask to a 2D format.
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"a mask must be a bool array, got dtype {mask.dtype}")
    foreground = 255 if file_suffix(path) in WRITABLE_2D_SUFFIXES else 1
    return _write(Path(path), mask.astype(np.uint8) * np.uint8(foreground), reference)


def write_label_map(path: str | Path, labels: np.ndarray, reference: Image2D | Volume | None = None) -> Path:
    """Write one label map (0 = background, one positive integer per object or class).

    Args:
        path: destination, as for :func:`write_mask`.
        labels: ``(H, W)`` or ``(Z, Y, X)`` array of any integer dtype, non-negative.
        reference: as for :func:`write_mask`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`. Values are stored unchanged in the smallest unsigned
        dtype that holds the largest label (uint8, uint16, ...); PNG holds at most uint16.

    Raises:
        TypeError: ``labels`` is not an integer array.
        InvalidLabelError: negative values.
        GeometryMismatchError: ``labels.shape`` differs from ``reference.shape``.
        UnsupportedFormatError: an ending samia does not write, a 3D array to a 2D format, labels
            above 65535 to PNG.
    """
    path = Path(path)
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"a label map must be an integer array, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InvalidLabelError(path, f"label map has negative values, e.g. {labels.min()}")
    maximum = int(labels.max()) if labels.size else 0
    return _write(path, labels.astype(np.min_scalar_type(maximum)), reference)


def write_probabilities(path: str | Path, probabilities: np.ndarray, reference: Image2D | Volume | None = None) -> Path:
    """Write a probability map (e.g. :meth:`samia.predictor.Prediction.probabilities`) as float32.

    Args:
        path: destination: ``.tif``/``.tiff`` (float32 TIFF, no geometry) or a volume format
            (``.nii.gz`` ...), which takes the reference's geometry as :func:`write_mask` does.
        probabilities: ``(H, W)`` or ``(Z, Y, X)`` real array with values in 0..1.
        reference: as for :func:`write_mask`.

    Raises:
        TypeError: not a real-valued array.
        ValueError: values outside 0..1 or not finite.
        UnsupportedFormatError: PNG (integers only) or another ending samia does not write.
        GeometryMismatchError: the shape differs from ``reference.shape``.
    """
    path = Path(path)
    probabilities = np.asarray(probabilities)
    if probabilities.dtype.kind != "f":
        raise TypeError(f"probabilities must be a float array, got dtype {probabilities.dtype}")
    if not (np.isfinite(probabilities).all() and probabilities.min() >= 0 and probabilities.max() <= 1):
        raise ValueError("probabilities must be finite values in 0..1")
    if file_suffix(path) == ".png":
        raise UnsupportedFormatError(path, "PNG holds integers, not probabilities; use .tif or .nii.gz")
    return _write(path, probabilities.astype(np.float32), reference)


def _write(path: Path, array: np.ndarray, reference: Image2D | Volume | None) -> Path:
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f"expected a non-empty (H, W) or (Z, Y, X) array, got shape {array.shape}")
    if reference is not None and array.shape != reference.shape:
        raise GeometryMismatchError(
            path,
            f"array shape {array.shape} differs from the shape {reference.shape} of the reference "
            f"image {reference.path or '<array>'}",
        )
    suffix = file_suffix(path)
    write: Callable[[Path], None]
    if suffix in WRITABLE_2D_SUFFIXES:
        if array.ndim != 2:
            raise UnsupportedFormatError(
                path, f"a 3D array cannot be written as {suffix}; use one of {', '.join(WRITABLE_VOLUME_SUFFIXES)}"
            )
        if suffix == ".png" and array.dtype.itemsize > 2:
            raise UnsupportedFormatError(
                path, f"PNG holds values up to 65535, the array holds up to {array.max()}; use .tif or .nii.gz"
            )
        write = partial(write_image_2d, array=array)
    elif suffix in WRITABLE_VOLUME_SUFFIXES:
        from samia.io.volume import to_sitk, write_sitk

        write = partial(write_sitk, image=to_sitk(array, reference))
    else:
        raise UnsupportedFormatError(
            path,
            f"cannot write {suffix!r} files; masks and label maps are written losslessly as "
            f"{', '.join(WRITABLE_2D_SUFFIXES + WRITABLE_VOLUME_SUFFIXES)}",
        )
    atomic_write(path, write)
    return path
