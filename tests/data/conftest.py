"""Fixtures for the samia.data tests: small real files written into temporary folders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from samia.data import Case, make_phantom_volume

VOLUME_SPACING = (3.0, 0.8, 0.8)
VOLUME_ORIGIN = (-40.0, 12.5, -21.0)


def _save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def _save_volume(
    path: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float] = VOLUME_SPACING,
    origin: tuple[float, float, float] = VOLUME_ORIGIN,
) -> Path:
    """Write a ``(Z, Y, X)`` array with spacing ``(z, y, x)`` mm (any SimpleITK ending)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path), useCompression=path.name.endswith(".gz"))
    return path


def _save_dicom(path: Path, array: np.ndarray) -> Path:
    """A single-frame 2D DICOM file (SimpleITK's secondary-capture writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    sitk.WriteImage(image, str(path))
    return path


def _save_json(path: Path, content: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def save_png() -> Callable[..., Path]:
    """``save_png(path, array)``: write a uint8/uint16 array as PNG (or TIFF, by ending) with Pillow."""
    return _save_png


@pytest.fixture
def save_volume() -> Callable[..., Path]:
    """``save_volume(path, array, spacing=(3, .8, .8), origin=...)``: write a volume with SimpleITK."""
    return _save_volume


@pytest.fixture
def save_dicom() -> Callable[..., Path]:
    """``save_dicom(path, array)``: write a single 2D DICOM file."""
    return _save_dicom


@pytest.fixture
def save_json() -> Callable[..., Path]:
    return _save_json


@pytest.fixture
def gray_image() -> np.ndarray:
    """A 32 x 40 uint8 gradient (not constant, so readers accept it)."""
    return (np.arange(32 * 40).reshape(32, 40) % 251).astype(np.uint8)


@pytest.fixture
def two_label_map() -> np.ndarray:
    """A 32 x 40 uint8 label map with labels 1 and 2."""
    labels = np.zeros((32, 40), dtype=np.uint8)
    labels[4:12, 4:14] = 1
    labels[18:28, 20:36] = 2
    return labels


@pytest.fixture(scope="module")
def phantom_volume_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, np.ndarray, np.ndarray]:
    """A 3D phantom written as NIfTI with anisotropic spacing (3.0, 0.8, 0.8) mm and a non-zero origin.

    Returns ``(case, image array, label array)``, arrays ``(12, 96, 96)``.
    """
    root = tmp_path_factory.mktemp("phantom3d")
    volume, labels, names = make_phantom_volume(
        np.random.default_rng(7), shape=(12, 96, 96), spacing=VOLUME_SPACING, origin=VOLUME_ORIGIN
    )
    image_path = _save_volume(root / "img.nii.gz", volume.array)
    label_path = _save_volume(root / "lab.nii.gz", labels)
    case = Case("phantom", image_path, label_path, "other", "phantoms", names)
    return case, volume.array, labels
