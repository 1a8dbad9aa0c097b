"""Geometric building blocks of prompts, computed from a ground-truth mask.

All functions take a ``(H, W)`` bool mask and return pixel coordinates in SAM's convention:
points ``(x, y)``, boxes ``(x0, y0, x1, y1)`` inclusive. An empty mask raises ``ValueError``
(there is no object to prompt for; the evaluation layer never asks for one).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _require_object(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2D mask, got shape {mask.shape}")
    if not mask.any():
        raise ValueError("mask is empty: no object to prompt for")
    return mask


def tight_box(mask: np.ndarray) -> np.ndarray:
    """``(4,)`` float64 ``(x0, y0, x1, y1)``: the smallest box holding every object pixel (inclusive)."""
    mask = _require_object(mask)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float64)


def deepest_point(mask: np.ndarray) -> np.ndarray:
    """``(2,)`` ``(x, y)`` of the object pixel farthest from the background (Euclidean distance).

    Ties are broken by the first pixel in row-major order, so the result is deterministic. The
    image border counts as background.
    """
    mask = _require_object(mask)
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return np.array([x, y], dtype=np.float64)


def centroid_point(mask: np.ndarray) -> tuple[np.ndarray, str]:
    """Huang et al.'s first positive point: the object's centroid, if it lies inside the object.

    Returns:
        ``((x, y), rule)``: the centroid rounded to the nearest pixel and ``"centroid"`` when that
        pixel belongs to the object; otherwise (a ring, a crescent, several components) the
        :func:`deepest_point` and ``"deepest_interior"``.
    """
    mask = _require_object(mask)
    ys, xs = np.nonzero(mask)
    x, y = int(round(xs.mean())), int(round(ys.mean()))
    if mask[y, x]:
        return np.array([x, y], dtype=np.float64), "centroid"
    return deepest_point(mask), "deepest_interior"
