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


def stride_sample(pixels_yx: np.ndarray, count: int) -> np.ndarray:
    """``count`` pixels at a uniform stride through ``(N, 2)`` row-major ``(y, x)`` pixels.

    Picks indices ``floor((i + 0.5) * N / count)`` for ``i < count`` (the middle of each of
    ``count`` equal runs); all pixels when ``N <= count``. Returns ``(k, 2)`` ``(x, y)`` float64.
    """
    if count <= 0 or len(pixels_yx) == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if len(pixels_yx) <= count:
        chosen = pixels_yx
    else:
        chosen = pixels_yx[((np.arange(count) + 0.5) * len(pixels_yx) / count).astype(np.int64)]
    return chosen[:, ::-1].astype(np.float64)


def positive_points(mask: np.ndarray, count: int) -> tuple[np.ndarray, str]:
    """Huang et al.'s positive points: :func:`centroid_point` first, then ``count - 1`` more at a
    uniform stride over the object's other pixels (:func:`stride_sample`).

    Returns:
        ``((count, 2) (x, y) float64, rule of the first point)``; fewer rows for tiny objects.
    """
    first, rule = centroid_point(mask)
    pixels = np.argwhere(mask)
    others = pixels[~((pixels[:, 0] == first[1]) & (pixels[:, 1] == first[0]))]
    return np.concatenate([first[None], stride_sample(others, count - 1)]), rule


def enlarged_box(box: np.ndarray, factor: float, shape: tuple[int, int]) -> np.ndarray:
    """``box`` scaled by ``factor`` about its centre, clipped to an image of ``shape`` ``(H, W)``."""
    centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) / 2 * factor
    low = np.maximum(np.floor(centre - half), 0)
    high = np.minimum(np.ceil(centre + half), [shape[1] - 1, shape[0] - 1])
    return np.concatenate([low, high])


def negative_points(mask: np.ndarray, count: int, factor: float = 2.0) -> np.ndarray:
    """Huang et al.'s negatives: ``count`` background pixels at a uniform stride inside the object's
    tight box enlarged ``factor`` times about its centre (clipped to the image).

    Returns ``(k, 2)`` ``(x, y)`` float64 with ``k <= count`` (fewer when little background is there).
    """
    x0, y0, x1, y1 = enlarged_box(tight_box(mask), factor, mask.shape).astype(np.int64)
    window = ~mask[y0 : y1 + 1, x0 : x1 + 1]
    pixels = np.argwhere(window) + np.array([y0, x0])
    return stride_sample(pixels, count)


def clip_box(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Clip XYXY ``box`` to an image of ``shape`` ``(H, W)`` and order its corners."""
    xs = np.clip(np.sort(box[[0, 2]]), 0, shape[1] - 1)
    ys = np.clip(np.sort(box[[1, 3]]), 0, shape[0] - 1)
    return np.array([xs[0], ys[0], xs[1], ys[1]], dtype=np.float64)
