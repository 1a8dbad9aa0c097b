"""Seeded synthetic phantoms (2D images and 3D volumes with label maps) and datasets made of them.

A phantom has a smooth textured background and non-overlapping objects, one label value each, in
the order of ``kinds``:

``"blob"``
    a bright, smooth, irregular blob (union of overlapping ellipses/ellipsoids): high contrast.
``"low_contrast"``
    a blob of the same kind whose intensity is the local background + 0.1 (a tenth of the range).
``"vessel"``
    a thin tube around a random smooth (cubic Bezier) curve, about 3 pixels wide in-plane.

Multiplicative speckle (gamma-distributed, mean 1, std 1/8) is applied last; intensities are
float32 in ``[0, 1]``. Everything random comes from the ``numpy.random.Generator`` passed in, so
one seed gives identical arrays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from samia.types import IDENTITY_DIRECTION_3D, Image2D, Volume, float_triple

PHANTOM_KINDS: tuple[str, ...] = ("blob", "low_contrast", "vessel")
"""Object kinds :func:`make_phantom` knows."""

BLOB_INTENSITY = 0.85
VESSEL_INTENSITY = 0.72
LOW_CONTRAST_DELTA = 0.10
SPECKLE_LOOKS = 64
"""Gamma shape of the speckle: std = 1/sqrt(64) = 0.125 of the local intensity."""

DEFAULT_VOLUME_SPACING = (3.0, 0.8, 0.8)
DEFAULT_VOLUME_ORIGIN = (-51.2, 20.4, -31.5)
_MAX_TRIES = 200


def _names(kinds: Sequence[str]) -> dict[int, str]:
    unknown = [k for k in kinds if k not in PHANTOM_KINDS]
    if unknown:
        raise ValueError(f"unknown phantom kinds {unknown}; expected some of {PHANTOM_KINDS}")
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for value, kind in enumerate(kinds, start=1):
        seen[kind] = seen.get(kind, 0) + 1
        names[value] = kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"
    if len(names) > 255:
        raise ValueError("at most 255 objects fit a uint8 label map")
    return names


def _background(rng: np.random.Generator, shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """Smooth texture (correlation ~6 mm) in about [0.22, 0.38] plus a gentle ramp along the last axis."""
    noise = rng.standard_normal(shape)
    texture = ndimage.gaussian_filter(noise, sigma=tuple(6.0 / spacing))
    texture = (texture - texture.min()) / max(float(np.ptp(texture)), 1e-12)
    ramp = np.linspace(0.0, 0.04, shape[-1]) * rng.choice([-1.0, 1.0])
    return 0.22 + 0.12 * texture + ramp + (0.04 if ramp[-1] < 0 else 0.0)


def _grid(shape: tuple[int, ...], spacing: np.ndarray) -> list[np.ndarray]:
    """Physical coordinates (mm) of voxel centres, one broadcastable array per axis."""
    return [
        (np.arange(n, dtype=np.float64) * s).reshape([-1 if a == i else 1 for a in range(len(shape))])
        for i, (n, s) in enumerate(zip(shape, spacing))
    ]


def _blob(rng: np.random.Generator, shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """Union of 3 ellipsoids: a main one, and two whose centres lie inside it (so the union is connected).

    The offsets are at most 0.55 of the main radii per axis: ``0.55**2 * 3 < 1``, inside in 2D and 3D.
    """
    extent = np.asarray(shape) * spacing
    inplane = float(min(extent[-2:]))
    base = np.minimum(rng.uniform(0.09, 0.14) * inplane, 0.3 * extent)
    radii = base * rng.uniform(0.75, 1.0, len(shape))
    margin = 1.6 * base + 2.0 * spacing
    low, high = np.minimum(margin, extent / 2), np.maximum(extent - margin, extent / 2)
    centre = rng.uniform(low, high)
    grid = _grid(shape, spacing)
    mask = np.zeros(shape, dtype=bool)
    for part in range(3):
        offset = np.zeros(len(shape)) if part == 0 else rng.uniform(-0.55, 0.55, len(shape)) * radii
        part_radii = radii if part == 0 else base * rng.uniform(0.5, 0.9, len(shape))
        dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre + offset, part_radii))
        mask |= dist <= 1.0
    return mask


def _vessel(rng: np.random.Generator, shape: tuple[int, ...], spacing: np.ndarray) -> np.ndarray:
    """A tube of radius one in-plane pixel around a cubic Bezier curve whose control points lie inside."""
    extent = (np.asarray(shape) - 1) * spacing
    margin = np.minimum(4.0 * spacing, extent / 4)
    low, high = margin, extent - margin
    inplane = float(min(extent[-2:]))
    for _ in range(_MAX_TRIES):
        start, end = rng.uniform(low, high), rng.uniform(low, high)
        length = float(np.linalg.norm(end - start))
        if length >= 0.4 * inplane:
            break
    controls = [start]
    for fraction in (1 / 3, 2 / 3):
        point = start + fraction * (end - start) + rng.uniform(-0.3, 0.3, len(shape)) * length
        controls.append(np.clip(point, low, high))
    controls.append(end)
    p0, p1, p2, p3 = controls
    steps = int(np.ceil(4 * length / float(spacing.min()))) + 2
    t = np.linspace(0.0, 1.0, steps)[:, None]
    curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
    index = np.clip(np.rint(curve / spacing).astype(np.int64), 0, np.asarray(shape) - 1)
    centreline = np.zeros(shape, dtype=bool)
    centreline[tuple(index.T)] = True
    radius = float(spacing[-2:].min()) * 1.0001
    return ndimage.distance_transform_edt(~centreline, sampling=tuple(spacing)) <= radius


def _render(
    rng: np.random.Generator, shape: tuple[int, ...], spacing: tuple[float, ...], kinds: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    names = _names(kinds)
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    background = _background(rng, shape, spacing_arr)
    image = background.copy()
    labels = np.zeros(shape, dtype=np.uint8)
    for value, kind in enumerate(kinds, start=1):
        forbidden = ndimage.binary_dilation(labels > 0, iterations=2)
        for _ in range(_MAX_TRIES):
            mask = _vessel(rng, shape, spacing_arr) if kind == "vessel" else _blob(rng, shape, spacing_arr)
            if mask.any() and not (mask & forbidden).any():
                break
        else:
            raise ValueError(f"could not place a {kind!r} object without overlap in shape {shape}; use a larger shape")
        labels[mask] = value
        if kind == "blob":
            image[mask] = BLOB_INTENSITY
        elif kind == "low_contrast":
            image[mask] = background[mask] + LOW_CONTRAST_DELTA
        else:
            image[mask] = VESSEL_INTENSITY
    # partial-volume blur of about 0.6 in-plane pixel, then speckle
    image = ndimage.gaussian_filter(image, sigma=tuple(0.6 * spacing_arr[-2:].min() / spacing_arr))
    image *= rng.gamma(SPECKLE_LOOKS, 1.0 / SPECKLE_LOOKS, size=shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels, names


def make_phantom(
    rng: np.random.Generator,
    shape: tuple[int, int] = (128, 128),
    kinds: Sequence[str] = PHANTOM_KINDS,
) -> tuple[Image2D, np.ndarray, dict[int, str]]:
    """A seeded 2D phantom.

    Args:
        rng: the only source of randomness.
        shape: ``(H, W)``; objects scale with it (``(64, 64)`` is about the smallest that fits all three).
        kinds: object kinds, label values 1, 2, ... in this order (see module docstring).

    Returns:
        ``(image, labels, names)``: ``image`` an :class:`Image2D` of float32 in ``[0, 1]``, spacing
        ``(1.0, 1.0)``, modality ``"other"``; ``labels`` ``(H, W)`` uint8 with 0 = background;
        ``names`` label value -> name (the kind; repeated kinds get ``_2``, ``_3`` ...).

    Raises:
        ValueError: unknown kind, or the objects cannot be placed without overlap.
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {shape}")
    array, labels, names = _render(rng, tuple(int(s) for s in shape), (1.0, 1.0), kinds)
    return Image2D(array, spacing=(1.0, 1.0), modality="other"), labels, names


def make_phantom_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (16, 128, 128),
    spacing: tuple[float, float, float] = DEFAULT_VOLUME_SPACING,
    origin: tuple[float, float, float] = DEFAULT_VOLUME_ORIGIN,
    kinds: Sequence[str] = PHANTOM_KINDS,
) -> tuple[Volume, np.ndarray, dict[int, str]]:
    """A seeded 3D phantom: objects are 3D (ellipsoid unions, a tube around a 3D curve) in mm.

    Args:
        rng: the only source of randomness.
        shape: ``(Z, Y, X)``.
        spacing: ``(z, y, x)`` mm; anisotropic by default (thick slices).
        origin: ITK/LPS ``(x, y, z)`` mm of voxel ``(0, 0, 0)``; direction is identity.
        kinds: as for :func:`make_phantom`.

    Returns:
        ``(volume, labels, names)``: float32 volume in ``[0, 1]`` with modality ``"other"``;
        ``labels`` ``(Z, Y, X)`` uint8.
    """
    if len(shape) != 3 or len(spacing) != 3:
        raise ValueError(f"shape and spacing must have 3 entries (z, y, x), got {shape} and {spacing}")
    array, labels, names = _render(rng, tuple(int(s) for s in shape), tuple(float(s) for s in spacing), kinds)
    volume = Volume(
        array,
        spacing=float_triple(spacing),
        origin=float_triple(origin),
        direction=IDENTITY_DIRECTION_3D,
        modality="other",
    )
    return volume, labels, names


def _write_png16(path: Path, array: np.ndarray) -> None:
    from PIL import Image as PILImage

    scaled = np.rint(np.clip(array, 0.0, 1.0) * 65535).astype(np.uint16)
    PILImage.fromarray(scaled).save(path)


def _write_nifti(path: Path, volume: Volume) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(tuple(reversed(volume.spacing)))
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction)
    sitk.WriteImage(image, str(path), useCompression=True)


def write_phantom_dataset(
    root: str | Path,
    n_cases: int,
    rng: np.random.Generator,
    layout: str = "folder",
    shape: tuple[int, int] = (128, 128),
    volume_depth: int | None = None,
    kinds: Sequence[str] = PHANTOM_KINDS,
    name: str = "phantom",
) -> Path:
    """Write ``n_cases`` phantoms as a dataset samia can read back with :func:`samia.data.build_manifest`.

    2D (``volume_depth=None``): images are 16-bit PNG (``round(image * 65535)``), label maps PNG
    written with :func:`samia.io.write_label_map`. 3D: ``(volume_depth, *shape)`` float32 NIfTI
    volumes with spacing :data:`DEFAULT_VOLUME_SPACING` and origin :data:`DEFAULT_VOLUME_ORIGIN`,
    label maps NIfTI with the same geometry. Case ids are ``phantom_000``, ``phantom_001`` ...

    Args:
        root: the dataset folder (created; existing files of the same names are overwritten).
        n_cases: number of cases (>= 1).
        rng: the only source of randomness.
        layout: ``"folder"`` (``images/`` + ``masks/`` + ``dataset.json`` with value -> name labels)
            or ``"msd"`` (``imagesTr/`` + ``labelsTr/`` + an MSD ``dataset.json`` with a training list).
        shape: ``(H, W)`` of each image or slice.
        volume_depth: number of slices for 3D volumes; None for 2D images.
        kinds: object kinds, as for :func:`make_phantom`.
        name: the dataset name in ``dataset.json``.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.
    """
    from samia.io import write_label_map

    if layout not in ("folder", "msd"):
        raise ValueError(f"layout must be 'folder' or 'msd', got {layout!r}")
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    root = Path(root)
    folders = ("images", "masks") if layout == "folder" else ("imagesTr", "labelsTr")
    image_dir, label_dir = root / folders[0], root / folders[1]
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if volume_depth is None else ".nii.gz"
    names = _names(kinds)
    training = []
    for index in range(n_cases):
        case_id = f"phantom_{index:03d}"
        image_path, label_path = image_dir / f"{case_id}{suffix}", label_dir / f"{case_id}{suffix}"
        if volume_depth is None:
            image, labels, names = make_phantom(rng, shape, kinds)
            _write_png16(image_path, image.array)
            write_label_map(label_path, labels, reference=image)
        else:
            volume, labels, names = make_phantom_volume(rng, (int(volume_depth), *shape), kinds=kinds)
            _write_nifti(image_path, volume)
            write_label_map(label_path, labels, reference=volume)
        training.append({"image": f"./{folders[0]}/{image_path.name}", "label": f"./{folders[1]}/{label_path.name}"})
    description = (
        f"samia synthetic phantoms ({'2D' if volume_depth is None else '3D'}): "
        f"{', '.join(names.values())}; made by samia.data.phantoms.write_phantom_dataset"
    )
    if layout == "folder":
        labels_json = {str(k): v for k, v in names.items()}
        meta: dict[str, Any] = {"name": name, "description": description, "modality": "other", "labels": labels_json}
    else:
        meta = {
            "name": name,
            "description": description,
            "tensorImageSize": "2D" if volume_depth is None else "3D",
            "modality": {"0": "other"},
            "labels": {"0": "background", **{str(k): v for k, v in names.items()}},
            "numTraining": n_cases,
            "numTest": 0,
            "training": training,
            "test": [],
        }
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return root


def ellipsoid_mask(shape: tuple[int, int, int], center: Sequence[float], radii: Sequence[float]) -> np.ndarray:
    """``(Z, Y, X)`` bool: the voxels whose centres lie in the axis-aligned ellipsoid with
    ``center`` and ``radii`` (voxels, ``(z, y, x)`` order)."""
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (
        ((z - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2 + ((x - center[2]) / radii[2]) ** 2
    ) <= 1.0


def bent_tube_mask(
    shape: tuple[int, int, int], start: Sequence[float], bend: float, radius: float, z_range: tuple[int, int]
) -> np.ndarray:
    """``(Z, Y, X)`` bool: a tube of ``radius`` voxels (in-plane) through slices ``z_range`` (inclusive)
    whose centre starts at ``start`` ``(y, x)`` and moves ``bend`` voxels in x along a quarter sine
    over the range (a bent vessel: its cross-section moves from slice to slice)."""
    mask = np.zeros(shape, dtype=bool)
    y, x = np.ogrid[: shape[1], : shape[2]]
    low, high = z_range
    for z in range(low, high + 1):
        t = (z - low) / max(high - low, 1)
        cx = start[1] + bend * np.sin(t * np.pi / 2)
        mask[z] = (y - start[0]) ** 2 + (x - cx) ** 2 <= radius**2
    return mask


def volume_case(
    rng: np.random.Generator, depth: int = 60, side: int = 128, n_objects: int = 3
) -> tuple[Volume, np.ndarray]:
    """A volume of ``depth`` slices of ``side`` x ``side`` with ``n_objects`` bright ellipsoids whose
    z-ranges overlap (each spans about 70% of the slices), on a speckled background; spacing
    (2, 0.8, 0.8) mm. Returns ``(volume, labels)`` with labels ``1..n_objects`` (uint8)."""
    labels = np.zeros((depth, side, side), dtype=np.uint8)
    for number in range(1, n_objects + 1):
        angle = 2 * np.pi * number / n_objects
        center = (
            depth * (0.45 + 0.1 * rng.uniform()),
            side / 2 + side / 4 * np.sin(angle),
            side / 2 + side / 4 * np.cos(angle),
        )
        radii = (depth * 0.35, side * 0.1, side * 0.12)
        labels[ellipsoid_mask(labels.shape, center, radii) & (labels == 0)] = number
    background = 0.2 + 0.05 * rng.standard_normal(labels.shape)
    array = np.where(labels > 0, 0.8, background) * rng.gamma(SPECKLE_LOOKS, 1 / SPECKLE_LOOKS, labels.shape)
    return Volume(np.clip(array, 0, 1).astype(np.float32), spacing=(2.0, 0.8, 0.8), path="volume_case"), labels
