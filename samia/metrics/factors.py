"""Properties of a ground-truth object that may predict how well SAM segments it.

:func:`object_factors` measures one object on its 2D image; the evaluation stores the values in
every result row under the names of :data:`FACTOR_NAMES`. Definitions (all on the pixel grid the
model sees, except ``area_mm2``):

``area_px``
    number of object pixels.
``area_mm2``
    ``area_px * spacing_y * spacing_x``.
``area_fraction``
    ``area_px / (H * W)``: the object's share of the image (what survives the resize to the model's
    input, whose longest side is fixed).
``contrast``
    ``|mean(foreground) - mean(ring)| / (p99.5 - p0.5)`` of the image's intensities (luminance
    ``0.299 R + 0.587 G + 0.114 B`` for RGB). The ring is the object's tight box grown by a margin
    (``max(3 px, 10 %`` of the box's height/width) per axis, clipped to the image) minus the object
    grown by ``gap`` pixels (default 2, to leave out partial-volume boundary pixels). NaN when the
    ring is empty (the object fills its surroundings) or the image has no intensity spread.
``efd_order``
    boundary complexity: the smallest number of elliptic Fourier harmonics (Kuhl & Giardina 1982)
    whose reconstruction of the object's outer contour (the longest iso-0.5 contour of
    ``skimage.measure.find_contours``, in pixels) is within a tolerance of it. The error of a
    reconstruction is the average symmetric distance between the two curves (both sampled at equal
    arc-length steps of a fifth of the tolerance); the tolerance is ``max(1 px, 2 %`` of the equivalent diameter
    ``sqrt(4 area / pi))``: one pixel for small objects (below that the pixel staircase itself would
    count as shape), scale-invariant for large ones. A disk needs 1 harmonic, a 3:1 ellipse 3 (the
    arc-length parameterisation is not the ellipse's own), a five-pointed star about 6. Capped at 50
    (50 means "50 or more").
``isoperimetric_ratio``
    ``4 pi area / perimeter**2`` in pixels, the perimeter by ``skimage.measure.perimeter_crofton``
    (4 directions; within a few % of the true length for a digital disk, where the 4-neighbourhood
    ``perimeter`` is 7 % short): about 1 for a disk, smaller for elongated or ragged objects and for
    several components. Objects of a few pixels can exceed 1. NaN for a zero perimeter.
``aspect_ratio``
    ``major / minor`` axis (>= 1) of the ellipse with the object's second moments, each pixel a
    unit square (the covariance of the pixel centres plus 1/12 per axis, so a one-pixel-wide line
    has a finite ratio).
``n_components``
    number of 8-connected components (the connectivity of ``--connected-components``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from samia.types import Image2D

FACTOR_NAMES: tuple[str, ...] = (
    "area_px",
    "area_mm2",
    "area_fraction",
    "contrast",
    "efd_order",
    "isoperimetric_ratio",
    "aspect_ratio",
    "n_components",
)
"""The keys of :func:`object_factors`, which are also the result-row column names."""

SIZE_FACTORS: tuple[str, ...] = ("area_px", "area_mm2", "area_fraction")
"""Three measures of one thing (nearly collinear within a dataset): a partial correlation never
controls one of them for another."""

SIZE_CONTROL = "area_fraction"
"""The size measure other factors are controlled for (the object's scale as the model sees it)."""

EFD_MAX_ORDER = 50
EFD_STEPS_PER_TOLERANCE = 5
"""The curves are compared at samples ``tolerance / 5`` apart: sampling shifts an error by at most
a tenth of the tolerance."""
EFD_MIN_SAMPLES = 64
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114])
"""ITU-R BT.601 luma weights for RGB images."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_PIXEL_SECOND_MOMENT = 1.0 / 12.0
"""Second moment of a unit square about its centre, per axis."""


def object_factors(
    image: Image2D,
    mask: np.ndarray,
    *,
    ring_margin: float = 0.10,
    min_ring_margin_px: int = 3,
    gap_px: int = 2,
    efd_relative_tolerance: float = 0.02,
    efd_min_tolerance_px: float = 1.0,
    efd_max_order: int = EFD_MAX_ORDER,
) -> dict[str, float]:
    """Measure one object (definitions: module docstring).

    Args:
        image: the raw image; ``array`` ``(H, W)`` or ``(H, W, 3)``, any numeric dtype; ``spacing``
            ``(y, x)`` mm.
        mask: ``(H, W)`` bool, True on the object; must not be empty.
        ring_margin: growth of the box for the contrast ring, fraction of the box's height/width.
        min_ring_margin_px: smallest growth of the box, pixels.
        gap_px: object pixels are grown by this many pixels before being cut out of the ring.
        efd_relative_tolerance: EFD accuracy as a fraction of the equivalent diameter.
        efd_min_tolerance_px: smallest EFD accuracy, pixels.
        efd_max_order: the cap of ``efd_order``.

    Returns:
        ``{name: float}`` for every name of :data:`FACTOR_NAMES`, in that order.

    Raises:
        ValueError: ``mask`` is empty, not 2D, or not of the image's ``(H, W)``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {image.shape}")
    if not mask.any():
        raise ValueError("mask is empty: an object needs at least one pixel")
    area = int(mask.sum())
    height, width = mask.shape
    return {
        "area_px": float(area),
        "area_mm2": float(area * image.spacing[0] * image.spacing[1]),
        "area_fraction": area / (height * width),
        "contrast": intensity_contrast(luminance(image.array), mask, ring_margin, min_ring_margin_px, gap_px),
        "efd_order": float(efd_order(mask, efd_relative_tolerance, efd_min_tolerance_px, efd_max_order)),
        "isoperimetric_ratio": isoperimetric_ratio(mask),
        "aspect_ratio": aspect_ratio(mask),
        "n_components": float(ndimage.label(mask, structure=_EIGHT_CONNECTED)[1]),
    }


def luminance(array: np.ndarray) -> np.ndarray:
    """``(H, W)`` float64 intensities: the array itself (gray) or its BT.601 luma (``(H, W, 3)`` RGB)."""
    array = np.asarray(array, dtype=np.float64)
    return array @ LUMINANCE_WEIGHTS if array.ndim == 3 else array


def intensity_contrast(
    gray: np.ndarray, mask: np.ndarray, ring_margin: float = 0.10, min_ring_margin_px: int = 3, gap_px: int = 2
) -> float:
    """Foreground-vs-ring contrast normalised by the image's 0.5-99.5 percentile spread (see module).

    Args:
        gray: ``(H, W)`` float intensities.
        mask: ``(H, W)`` bool, non-empty.

    Returns:
        The contrast, >= 0 (usually <= 1); NaN for an empty ring or an image without spread.
    """
    rows, cols = ndimage.find_objects(mask.astype(np.uint8))[0]  # the tight box
    y0, y1, x0, x1 = rows.start, rows.stop - 1, cols.start, cols.stop - 1
    margin_y = max(min_ring_margin_px, math.ceil(ring_margin * (y1 - y0 + 1)))
    margin_x = max(min_ring_margin_px, math.ceil(ring_margin * (x1 - x0 + 1)))
    ring = np.zeros_like(mask)
    ring[max(y0 - margin_y, 0) : y1 + margin_y + 1, max(x0 - margin_x, 0) : x1 + margin_x + 1] = True
    grown = ndimage.binary_dilation(mask, structure=_EIGHT_CONNECTED, iterations=gap_px) if gap_px else mask
    ring &= ~grown
    low, high = np.percentile(gray, [0.5, 99.5])
    if not ring.any() or high <= low:
        return math.nan
    return float(abs(gray[mask].mean() - gray[ring].mean()) / (high - low))


def isoperimetric_ratio(mask: np.ndarray) -> float:
    """``4 pi area / perimeter**2`` in pixels (Crofton perimeter, 4 directions); NaN for a zero perimeter."""
    perimeter = measure.perimeter_crofton(mask, directions=4)
    return float(4.0 * math.pi * mask.sum() / perimeter**2) if perimeter > 0 else math.nan


def aspect_ratio(mask: np.ndarray) -> float:
    """Major over minor axis (>= 1) of the object's second-moment ellipse, pixels as unit squares.

    The axes are proportional to the square roots of the eigenvalues of the pixel centres' covariance
    (as ``skimage.measure.regionprops``' inertia tensor) plus 1/12 per axis, a unit square's own
    second moment.
    """
    covariance = np.cov(np.nonzero(mask), bias=True).reshape(2, 2) + _PIXEL_SECOND_MOMENT * np.eye(2)
    minor, major = np.linalg.eigvalsh(covariance)
    return float(math.sqrt(major / minor))


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """``(M, 2)`` float ``(row, col)`` vertices of the longest iso-0.5 contour, closed (first == last).

    The mask is padded by one pixel first, so objects touching the border still give closed contours.
    """
    contours: list[np.ndarray] = measure.find_contours(np.pad(mask, 1).astype(np.float64), 0.5)
    return max(contours, key=len) - 1.0


def elliptic_fourier_descriptors(contour: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Elliptic Fourier descriptors of a closed piecewise-linear contour (Kuhl & Giardina 1982).

    Kuhl FP, Giardina CR, "Elliptic Fourier features of a closed contour", Computer Graphics and
    Image Processing 18(3):236-258, 1982. The contour is parameterised by arc length ``t`` in
    ``[0, T)``; its coordinate ``k`` is ``mean[k] + sum_n cos_terms[n, k] cos(2 pi (n+1) t / T)
    + sin_terms[n, k] sin(2 pi (n+1) t / T)``.

    Args:
        contour: ``(M, 2)`` vertices, closed (first == last); repeated vertices are allowed.
        order: number of harmonics.

    Returns:
        ``(mean, cos_terms, sin_terms, T)``: ``(2,)``, ``(order, 2)``, ``(order, 2)`` in the contour's
        units, and the contour's length.
    """
    steps = np.diff(contour, axis=0)
    lengths = np.hypot(steps[:, 0], steps[:, 1])
    steps, lengths = steps[lengths > 0], lengths[lengths > 0]
    t = np.concatenate([[0.0], np.cumsum(lengths)])
    period = float(t[-1])
    vertices = contour[0] + np.concatenate([[[0.0, 0.0]], np.cumsum(steps, axis=0)])
    harmonics = np.arange(1, order + 1)[:, None]
    phase = 2.0 * np.pi * harmonics * t[None, :] / period  # (order, M')
    slopes = steps / lengths[:, None]  # d(row, col)/dt of every segment
    scale = period / (2.0 * np.pi**2 * harmonics**2)
    cos_terms = scale * (np.diff(np.cos(phase), axis=1) @ slopes)
    sin_terms = scale * (np.diff(np.sin(phase), axis=1) @ slopes)
    mean = ((vertices[1:] + vertices[:-1]) / 2.0 * lengths[:, None]).sum(axis=0) / period
    return mean, cos_terms, sin_terms, period


def efd_reconstruction_errors(contour: np.ndarray, max_order: int, step: float) -> Iterator[float]:
    """Mean symmetric distance between a closed contour and its reconstructions with 1, 2, ... harmonics.

    Both curves are sampled at the same equally spaced arc-length parameters, ``step`` apart along
    the contour (at least :data:`EFD_MIN_SAMPLES` samples); the error of one reconstruction is the
    average symmetric surface distance (as ASSD in ``samia.metrics``) between the two sampled curves:
    both directions' nearest-sample distances, pooled and averaged. Sampling adds at most
    ``step / 2`` to each distance.

    Args:
        contour: ``(M, 2)`` vertices, closed (first == last).
        max_order: the largest number of harmonics.
        step: sampling step along the contour, in contour units.

    Yields:
        The error with ``N = 1, ..., max_order`` harmonics, in contour units (lazily: a caller may
        stop early).
    """
    mean, cos_terms, sin_terms, period = elliptic_fourier_descriptors(contour, max_order)
    lengths = np.hypot(*np.diff(contour, axis=0).T)
    t_vertices = np.concatenate([[0.0], np.cumsum(lengths)])
    t = np.linspace(0.0, period, max(EFD_MIN_SAMPLES, math.ceil(period / step)), endpoint=False)
    original = np.stack([np.interp(t, t_vertices, contour[:, k]) for k in range(2)], axis=1)
    original_tree = cKDTree(original)
    reconstruction = np.broadcast_to(mean, original.shape)
    for harmonic in range(max_order):
        phase = 2.0 * np.pi * (harmonic + 1) * t[:, None] / period
        reconstruction = reconstruction + np.cos(phase) * cos_terms[harmonic] + np.sin(phase) * sin_terms[harmonic]
        to_original = original_tree.query(reconstruction)[0]
        to_reconstruction = cKDTree(reconstruction).query(original)[0]
        yield float((to_original.sum() + to_reconstruction.sum()) / (2 * len(t)))


def efd_order(
    mask: np.ndarray,
    relative_tolerance: float = 0.02,
    min_tolerance_px: float = 1.0,
    max_order: int = EFD_MAX_ORDER,
) -> int:
    """The smallest number of elliptic Fourier harmonics that reconstructs the outer contour (see module).

    Args:
        mask: ``(H, W)`` bool, non-empty.
        relative_tolerance: accuracy as a fraction of the equivalent diameter ``sqrt(4 area / pi)``.
        min_tolerance_px: smallest accuracy, pixels.
        max_order: returned when no order up to it is accurate enough.
    """
    tolerance = max(min_tolerance_px, relative_tolerance * math.sqrt(4.0 * mask.sum() / math.pi))
    errors = efd_reconstruction_errors(outer_contour(mask), max_order, step=tolerance / EFD_STEPS_PER_TOLERANCE)
    for order, error in enumerate(errors, start=1):
        if error <= tolerance:
            return order
    return max_order
