"""File endings samia reads and writes, and how to name a file without its ending."""

from __future__ import annotations

from pathlib import Path

IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""2D formats read with Pillow / tifffile (8 or 16 bit, gray, RGB or RGBA)."""

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
"""3D formats read with SimpleITK (geometry kept)."""

DICOM_SUFFIXES = (".dcm", ".dicom")
"""Single DICOM files (read with pydicom). A folder of DICOM files is read as one series."""

NPZ_SUFFIXES = (".npz",)
"""The CVPR 2024 challenge's NumPy archives (``imgs``, ``gts``, ``boxes``, ``spacing``; :mod:`samia.io.npz`)."""

SUPPORTED_SUFFIXES = IMAGE_2D_SUFFIXES + VOLUME_SUFFIXES + DICOM_SUFFIXES + NPZ_SUFFIXES

WRITABLE_2D_SUFFIXES = (".png", ".tif", ".tiff")
"""Lossless single-file formats masks and label maps are written to as plain 2D arrays (no spacing)."""

WRITABLE_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
"""Single-file formats masks and label maps are written to with their geometry (2D or 3D, SimpleITK).

``.mhd`` and ``.nhdr`` are readable but not written: they are header + data file pairs, which cannot
be replaced atomically."""


def file_suffix(path: str | Path) -> str:
    """The lower-case ending of ``path``, with ``.nii.gz`` treated as one ending; ``""`` if none."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def image_stem(path: str | Path) -> str:
    """The file name without its (possibly double) ending: ``case_001.nii.gz -> case_001``."""
    name = Path(path).name
    suffix = file_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


def is_supported(path: str | Path) -> bool:
    """True for a file with a supported ending or a folder (a DICOM series candidate)."""
    path = Path(path)
    return path.is_dir() or file_suffix(path) in SUPPORTED_SUFFIXES
