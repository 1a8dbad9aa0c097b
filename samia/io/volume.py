"""Files with geometry: NIfTI (``.nii``, ``.nii.gz``), NRRD, MetaImage (MHA/MHD), through SimpleITK.

SimpleITK is the single source of geometry: spacing, origin and direction are taken from (and written
back through) ``SimpleITK.Image``, so a mask written with a volume as reference lands exactly on it in
any ITK-based viewer. NIfTI voxel values are read by nibabel (see :func:`read_volume` for why). Only
the axis order changes at this edge: SimpleITK's ``(x, y, z)`` sizes and spacings become ``(Z, Y, X)``
arrays and ``(z, y, x)`` spacings.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from samia.errors import CorruptFileError, InvalidImageError
from samia.files import file_stamp
from samia.io.formats import file_suffix
from samia.io.limits import check_declared_size
from samia.types import Image2D, Placement, Volume, check_slice_index, float_pair, float_triple

sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK's warnings would precede samia's one-line errors

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_NIFTI_READ_ERRORS = (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error)
"""What nibabel raises on truncated or malformed NIfTI files."""


class _Geometry(NamedTuple):
    """What SimpleITK says about an image, in ITK's ``(x, y[, z[, t]])`` order."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]
    components: int


def read_volume(path: Path) -> Image2D | Volume:
    """Read a NIfTI, NRRD or MetaImage file (or any file SimpleITK reads, e.g. a multi-frame DICOM).

    Geometry always comes from SimpleITK. NIfTI pixel data is read by nibabel, because ITK's NIfTI
    reader silently replaces NaN/Inf voxels with 0 and zero-fills a truncated file; nibabel keeps
    them (so that they are rejected) and raises on truncation. Both read the stored voxel order.

    Args:
        path: an existing file.

    Returns:
        A :class:`~samia.types.Volume` (``(Z, Y, X)`` array, spacing ``(z, y, x)`` mm, ITK origin and
        direction, modality ``"other"``) for 3D files; an :class:`~samia.types.Image2D` (spacing
        ``(y, x)``) for 2D files and for 3D files with a single slice (``z == 1``, e.g. a 2D image
        saved as NIfTI), whose origin, direction and slice spacing become its
        :class:`~samia.types.Placement` (2D files have none). The stored dtype is kept, except that NIfTI scaling
        (``scl_slope``/``scl_inter``) gives float64.

    Raises:
        CorruptFileError: the file cannot be decoded (garbage, truncated).
        InvalidImageError: one dimension only (NIfTI); more than three (e.g. a 4D time series with
            ``T > 1``); several components per voxel in a 3D image or in any NIfTI file.
    """
    nifti = _load_nifti_header(path) if file_suffix(path) in _NIFTI_SUFFIXES else None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        geometry = _geometry_of(reader)
        check_declared_size(path, reader.GetSize())
        _check_geometry(geometry, path)
        if nifti is not None:
            array = _read_nifti_array(nifti, geometry, path)
        else:
            array = sitk.GetArrayFromImage(reader.Execute())
    except RuntimeError as error:
        raise CorruptFileError(path, f"cannot be decoded by SimpleITK ({_itk_reason(error)})") from error
    return _to_samia(array, geometry, path)


def read_volume_slice(path: Path, index: int, axis: int) -> Image2D:
    """One 2D slice of a 3D NIfTI, NRRD or MetaImage file, reading only that slice where the format
    allows it (nibabel's proxy for NIfTI, ITK's extract region for NRRD/MHA).

    Equals ``read_volume(path).slice(index, axis)``; the size limit
    (:func:`~samia.io.limits.check_declared_size`) applies to the slice, not to the volume.

    Raises:
        InvalidImageError: the file is not 3D, ``axis`` is not 0-2, ``index`` is outside the axis.
        CorruptFileError: as :func:`read_volume`.
    """
    nifti = _open_nifti(path) if file_suffix(path) in _NIFTI_SUFFIXES else None
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise CorruptFileError(path, f"cannot be decoded by SimpleITK ({_itk_reason(error)})") from error
    geometry = _geometry_of(reader)
    size = list(geometry.size)  # ITK order (x, y, z)
    if nifti is not None and len(nifti.shape) > 3 and all(n == 1 for n in nifti.shape[3:]):
        nifti = nifti.slicer[..., 0]  # a singleton 4th axis (as ITK reads it): the 3D volume
    if len(size) != 3 or geometry.components != 1:
        raise InvalidImageError(path, f"is not a 3D gray volume (size {tuple(size)}); read it whole")
    check_slice_index(str(path), tuple(reversed(size)), index, axis)
    itk_axis = 2 - axis
    check_declared_size(path, [n for d, n in enumerate(size) if d != itk_axis])
    try:
        if nifti is not None:
            _check_declared_bytes(nifti, path)
            _check_gzip_complete(path)
            selection: list[int | slice] = [slice(None)] * 3
            selection[itk_axis] = index
            plane = np.asanyarray(nifti.dataobj[tuple(selection)]).T  # nibabel (x, y, z) -> samia order
        else:
            extract_index, extract_size = [0, 0, 0], list(size)
            extract_index[itk_axis], extract_size[itk_axis] = index, 0  # size 0 collapses the axis
            reader.SetExtractIndex(extract_index)
            reader.SetExtractSize(extract_size)
            plane = sitk.GetArrayFromImage(reader.Execute())
    except _NIFTI_READ_ERRORS + (RuntimeError,) as error:
        raise CorruptFileError(path, f"slice {index} cannot be read, the file may be truncated ({error})") from error
    spacing = float_pair(s for a, s in enumerate(reversed(geometry.spacing)) if a != axis)
    return Image2D(np.ascontiguousarray(plane), spacing=spacing, path=str(path), spacing_source="header")


def from_sitk(image: sitk.Image, path: Path) -> Image2D | Volume:
    """Convert a 2D or 3D ``SimpleITK.Image`` into an :class:`Image2D` or :class:`Volume` (see :func:`read_volume`).

    A 2D (or single-slice 3D) image with 3 or 4 components per pixel becomes an RGB ``(H, W, 3)``
    image (alpha dropped).
    """
    geometry = _geometry_of(image)
    _check_geometry(geometry, path)
    return _to_samia(sitk.GetArrayFromImage(image), geometry, path)


def to_sitk(array: np.ndarray, reference: Image2D | Volume | None) -> sitk.Image:
    """A ``SimpleITK.Image`` of a ``(Y, X)`` or ``(Z, Y, X)`` scalar array with the reference's geometry.

    A :class:`Volume` reference gives spacing, origin and direction; an :class:`Image2D` reference
    gives spacing, and when it has a :class:`~samia.types.Placement` (a DICOM slice) the image is a
    one-slice 3D image at that place (slice thickness as its third spacing); without a reference
    SimpleITK's defaults apply (unit spacing, zero origin, identity direction). The caller checks
    that the shapes agree.
    """
    placement = reference.placement if isinstance(reference, Image2D) else None
    if placement is not None and array.ndim == 2:
        image = sitk.GetImageFromArray(array[None])
        image.SetSpacing((*reversed(reference.spacing), placement.thickness))  # type: ignore[union-attr]
        image.SetOrigin(placement.origin)
        image.SetDirection(placement.direction)
        return image
    image = sitk.GetImageFromArray(array)
    if reference is not None:
        image.SetSpacing(tuple(reversed(reference.spacing)))
    if isinstance(reference, Volume):
        image.SetOrigin(reference.origin)
        image.SetDirection(reference.direction)
    return image


def write_sitk(path: Path, image: sitk.Image) -> None:
    """Write ``image`` compressed, in the format given by the ending of ``path``."""
    sitk.WriteImage(image, str(path), useCompression=True)


def _geometry_of(image_or_reader: sitk.Image | sitk.ImageFileReader) -> _Geometry:
    source: Any = image_or_reader  # SimpleITK's classes carry no type hints
    if isinstance(source, sitk.Image):
        components = source.GetNumberOfComponentsPerPixel()
    else:
        components = source.GetNumberOfComponents()
    return _Geometry(
        size=tuple(int(s) for s in source.GetSize()),
        spacing=tuple(float(s) for s in source.GetSpacing()),
        origin=tuple(float(o) for o in source.GetOrigin()),
        direction=tuple(float(d) for d in source.GetDirection()),
        components=int(components),
    )


def _check_geometry(geometry: _Geometry, path: Path) -> None:
    """Reject what samia cannot represent, before any pixel is read."""
    dimension = len(geometry.size)
    if dimension > 3:
        raise InvalidImageError(
            path,
            f"has {dimension} dimensions (size {geometry.size}, in x, y, z, t order); samia reads 2D "
            "images and 3D volumes, not time series or multi-channel volumes",
        )
    is_planar = dimension == 2 or geometry.size[2] == 1
    if not is_planar and geometry.components != 1:
        raise InvalidImageError(
            path, f"is a 3D image with {geometry.components} components per voxel; samia reads scalar volumes"
        )
    if geometry.components not in (1, 3, 4):
        raise InvalidImageError(
            path, f"has {geometry.components} components per pixel; samia reads gray or RGB(A) 2D images"
        )


def _to_samia(array: np.ndarray, geometry: _Geometry, path: Path) -> Image2D | Volume:
    """``array`` is ``(Z, Y, X[, C])`` or ``(Y, X[, C])``, as ``SimpleITK.GetArrayFromImage`` gives it."""
    spacing = tuple(reversed(geometry.spacing))
    if len(geometry.size) == 3 and geometry.size[2] == 1:
        array, spacing = array[0], spacing[1:]
    if array.ndim - (geometry.components > 1) == 3:
        return Volume(
            array,
            spacing=float_triple(spacing),
            origin=float_triple(geometry.origin),
            direction=geometry.direction,
            path=str(path),
        )
    if geometry.components > 1:
        array = array[..., :3]
    placement = None
    if len(geometry.size) == 3:  # one slice of a 3D image knows where it lies; a 2D file does not
        placement = Placement(float_triple(geometry.origin), geometry.direction, geometry.spacing[2])
    return Image2D(array, spacing=float_pair(spacing), path=str(path), spacing_source="header", placement=placement)


def _open_nifti(path: Path) -> nib.Nifti1Image:
    """The nibabel image of a NIfTI-1 or -2 file (header read, data not yet)."""
    try:
        nifti = nib.load(path, mmap=False)
    except _NIFTI_READ_ERRORS as error:
        raise CorruptFileError(path, f"cannot be read as NIfTI ({error})") from error
    if not isinstance(nifti, nib.Nifti1Image):  # NIfTI-2 images are NIfTI-1 images to nibabel
        raise CorruptFileError(path, f"is read by nibabel as {type(nifti).__name__}, not as NIfTI")
    return nifti


def _load_nifti_header(path: Path) -> nib.Nifti1Image:
    """The nibabel image (header read, data not yet); rejects 1D files."""
    nifti = _open_nifti(path)
    if len(nifti.shape) < 2:
        raise InvalidImageError(path, f"has 1 dimension (shape {nifti.shape}); samia reads 2D and 3D images")
    check_declared_size(path, nifti.shape)
    _check_declared_bytes(nifti, path)
    return nifti


def _check_declared_bytes(nifti: nib.Nifti1Image, path: Path) -> None:
    """A header that declares more voxel bytes than the file can hold is refused before reading.

    For ``.nii`` the file size is compared directly; for ``.nii.gz`` the uncompressed size that gzip
    records in its last four bytes (exact below 4 GiB, which :func:`~samia.io.limits.max_pixels`
    keeps voxel data under for the usual dtypes).
    """
    header = nifti.header
    needed = int(header["vox_offset"]) + int(np.prod(nifti.shape, dtype=np.int64)) * header.get_data_dtype().itemsize
    if path.name.lower().endswith(".gz"):
        with open(path, "rb") as handle:
            handle.seek(-4, 2)
            available = int.from_bytes(handle.read(4), "little")
        if needed >= 2**32:
            return
    else:
        available = path.stat().st_size
    if needed > available:
        raise CorruptFileError(
            path,
            f"header declares {' x '.join(map(str, nifti.shape))} voxels ({needed:,} bytes) but the file holds "
            f"{available:,} bytes; it is truncated or its header is wrong",
        )


_COMPLETE_GZIP: dict[Path, tuple[int, int, int]] = {}
"""``.gz`` files this process read to their end: path -> :func:`~samia.files.file_stamp` then."""


def _check_gzip_complete(path: Path) -> None:
    """A ``.nii.gz`` read in part (one slice) is still checked whole: the stream is decompressed to
    its end (in 1 MiB pieces, nothing kept), so a file cut after the slice is refused too. Done once
    per file and process, again when the file's (size, mtime, inode) changes."""
    if not path.name.lower().endswith(".gz"):
        return
    stamp = file_stamp(path)
    if _COMPLETE_GZIP.get(path) == stamp:
        return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptFileError(
            path, f"the gzip stream is incomplete or damaged ({error}); the file is truncated"
        ) from None
    _COMPLETE_GZIP[path] = stamp


def _read_nifti_array(nifti: nib.Nifti1Image, geometry: _Geometry, path: Path) -> np.ndarray:
    """The voxels as SimpleITK would order them: ``(Z, Y, X)`` / ``(Y, X)``, scaling applied."""
    if geometry.components != 1:
        raise InvalidImageError(
            path, f"NIfTI with {geometry.components} components per voxel (RGB/vector NIfTI) is not supported"
        )
    try:
        data = np.asanyarray(nifti.dataobj)  # (X, Y, Z, ...) in nibabel's order
    except _NIFTI_READ_ERRORS as error:
        raise CorruptFileError(path, f"NIfTI data cannot be read, the file may be truncated ({error})") from error
    return np.ascontiguousarray(data.reshape(geometry.size, order="F").T)


def _itk_reason(error: RuntimeError) -> str:
    """The reason in a SimpleITK exception, without the C++ source-file trail, on one line."""
    text = str(error)
    _, _, reason = text.partition("ERROR: ")
    return " ".join((reason or text).split())
