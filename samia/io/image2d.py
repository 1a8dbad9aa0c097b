"""2D raster files: PNG, JPEG and BMP through Pillow, TIFF through tifffile.

These formats carry no reliable physical pixel size, so images read here have spacing ``(1.0, 1.0)``.
Pixels are returned in stored order: JPEG EXIF orientation is not applied (annotation masks are
usually drawn on the stored pixel grid).
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from samia.errors import CorruptFileError, InvalidImageError, UnsupportedFormatError
from samia.io.formats import file_suffix
from samia.io.limits import check_declared_size, max_pixels
from samia.types import Image2D

_TIFF_SUFFIXES = (".tif", ".tiff")

_PILLOW_GRAY_MODES = ("L", "I", "F", "I;16", "I;16L", "I;16B")
"""Pillow modes that map one-to-one onto a single-channel numpy array (8, 16, 32-bit int, float)."""

_TIFF_READ_ERRORS = (tifffile.TiffFileError, ValueError, OSError, EOFError, IndexError, struct.error)
"""What tifffile raises on truncated or malformed files."""


def read_image_2d(path: Path, keep_palette_indices: bool = False) -> Image2D:
    """Read one 2D image file.

    Args:
        path: an existing ``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.tif``/``.tiff`` file.
        keep_palette_indices: for palette (indexed-colour) images, return the ``(H, W)`` palette
            indices instead of the ``(H, W, 3)`` colours. Label maps saved as palette PNGs (PASCAL VOC
            style) store the label in the index, so :func:`samia.io.read_label` asks for this.

    Returns:
        An :class:`~samia.types.Image2D` with spacing ``(1.0, 1.0)`` and modality ``"other"``, whose
        array is

        - ``(H, W)`` for gray files, in the stored dtype: 8-bit -> uint8, 16-bit -> uint16 (values
          kept), 32-bit int / float TIFF -> int32 / float32; 1-bit images -> uint8 0/1;
        - ``(H, W, 3)`` for colour files: RGBA and gray+alpha drop their alpha channel, palette and
          CMYK images are converted to RGB (uint8; palette TIFF: uint16 colour-map values). 16-bit
          RGB TIFF keeps uint16; 16-bit RGB PNG is reduced to 8 bits by Pillow.

    Raises:
        CorruptFileError: the content cannot be decoded (truncated, not an image).
        UnsupportedFormatError: a TIFF compression that needs the optional ``imagecodecs`` package.
        InvalidImageError: a multi-page or multi-channel (non-RGB) TIFF.
    """
    if file_suffix(path) in _TIFF_SUFFIXES:
        array = _read_tiff(path, keep_palette_indices)
    else:
        array = _read_pillow(path, keep_palette_indices)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return Image2D(array, path=str(path))


def write_image_2d(path: Path, array: np.ndarray) -> None:
    """Write a ``(H, W)`` array losslessly; the format follows the ending of ``path``.

    ``.png`` through Pillow (8- or 16-bit gray), ``.tif``/``.tiff`` through tifffile (zlib-compressed,
    any integer dtype or float32). The caller checks shape and dtype.
    """
    if file_suffix(path) in _TIFF_SUFFIXES:
        tifffile.imwrite(path, array, compression="zlib")
    else:
        Image.fromarray(array).save(path, format="PNG")


def _read_pillow(path: Path, keep_palette_indices: bool) -> np.ndarray:
    limit = max_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own bomb check, at samia's limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                check_declared_size(path, image.size)
                image.load()
                return _pillow_to_array(image, keep_palette_indices)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(path, f"declares more pixels than samia reads ({limit:,}): {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptFileError(path, f"cannot be decoded as an image ({error})") from error


def _pillow_to_array(image: Image.Image, keep_palette_indices: bool) -> np.ndarray:
    if image.mode == "1":
        return np.array(image, dtype=np.uint8)
    if image.mode == "P" and keep_palette_indices:
        return np.array(image)
    if image.mode in _PILLOW_GRAY_MODES:
        array = np.array(image)
        return array.astype(array.dtype.newbyteorder("="), copy=False)
    if image.mode in ("LA", "La"):
        return np.array(image.convert("L"))
    return np.array(image.convert("RGB"))


def _read_tiff(path: Path, keep_palette_indices: bool) -> np.ndarray:
    try:
        with tifffile.TiffFile(path) as tiff:
            series = tiff.series[0]
            page = series.keyframe
            check_declared_size(path, [n for n, axis in zip(series.shape, series.axes) if axis in "YXZQI"])
            _check_tiff_layout(path, series.shape, series.axes, len(tiff.pages), page.photometric)
            _check_tiff_codec(path, page.compression)
            array = series.asarray()
            colormap = page.colormap
    except _TIFF_READ_ERRORS as error:
        raise CorruptFileError(path, f"cannot be decoded as TIFF ({error})") from error

    if series.axes == "SYX":
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3:
        return array[..., :3]
    if page.photometric == tifffile.PHOTOMETRIC.PALETTE and not keep_palette_indices:
        if colormap is None:
            raise CorruptFileError(path, "is a palette TIFF without its colour map")
        coloured: np.ndarray = colormap.T[array]  # (3, N) colour map indexed by the palette index -> (H, W, 3)
        return coloured
    return array


def _check_tiff_codec(path: Path, compression: int) -> None:
    """Raise :class:`UnsupportedFormatError` for a compression tifffile cannot decode without ``imagecodecs``."""
    try:
        tifffile.TIFF.DECOMPRESSORS[compression]
    except KeyError as error:
        raise UnsupportedFormatError(path, f"TIFF compression cannot be decoded: {error.args[0]}") from error


def _check_tiff_layout(path: Path, shape: tuple[int, ...], axes: str, pages: int, photometric: int) -> None:
    """Accept one page that is gray ``YX`` or RGB(A) ``YXS``/``SYX``; reject stacks and other channels."""
    is_gray = axes == "YX"
    is_rgb = axes in ("YXS", "SYX") and photometric == tifffile.PHOTOMETRIC.RGB
    if pages > 1 or not (is_gray or is_rgb):
        raise InvalidImageError(
            path,
            f"TIFF with {pages} page(s) of shape {tuple(shape)} (axes {axes}); samia reads single-page 2D "
            "gray or RGB TIFF files, not stacks, time series or multi-channel images",
        )
