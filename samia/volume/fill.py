"""Masks for the slices a sampled chain skipped: shape-based interpolation between two decoded slices.

Each end mask becomes a signed distance map (Euclidean distance to the mask outside it, minus the
distance to the background inside it, in pixels); a skipped slice at fraction ``w`` of the way from
the nearer-to-the-key mask ``A`` to ``B`` gets ``(1 - w) * d_A + w * d_B < 0`` (Raya and Udupa's
shape-based interpolation, 1990, as ITK's morphological contour interpolator and 3D Slicer's
"Fill between slices" do it). Two equal masks fill with that mask; a shrinking object shrinks
linearly; an empty end (the object ending) makes the other end shrink towards its deepest part.
Distances are taken inside the two masks' joint bounding box grown by two pixels, which is exact
(every pixel beyond it is background).
"""

from __future__ import annotations

import numpy as np

_BORDER = 2


def interpolate_masks(start: np.ndarray, end: np.ndarray, count: int) -> list[np.ndarray]:
    """The ``count`` masks evenly between ``start`` and ``end``, in order from ``start``.

    Args:
        start, end: ``(H, W)`` bool masks of the two decoded slices.
        count: slices between them (>= 0).

    Returns:
        ``count`` ``(H, W)`` bool masks; all empty when both ends are.
    """
    if count <= 0:
        return []
    union = start | end
    if not union.any():
        return [np.zeros_like(start) for _ in range(count)]
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    top, left = max(0, rows[0] - _BORDER), max(0, cols[0] - _BORDER)
    bottom, right = min(union.shape[0], rows[-1] + _BORDER + 1), min(union.shape[1], cols[-1] + _BORDER + 1)
    window = (slice(top, bottom), slice(left, right))
    first, last = _signed_distance(start[window]), _signed_distance(end[window])
    masks = []
    for step in range(1, count + 1):
        weight = step / (count + 1)
        mask = np.zeros_like(start)
        mask[window] = (1.0 - weight) * first + weight * last < 0
        masks.append(mask)
    return masks


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Pixels to the mask outside it (>= 1), minus pixels to the background inside it (<= -1);
    an empty mask is far away everywhere (its size's diagonal)."""
    from scipy import ndimage

    if not mask.any():
        return np.full(mask.shape, float(np.hypot(*mask.shape)) + 1.0)
    return ndimage.distance_transform_edt(~mask) - ndimage.distance_transform_edt(mask)
