"""The point and box rules of Huang et al.'s released code (MedIA 2024), reproduced exactly.

The released code (``utils/get_prompts.py`` and ``test_only_box.py`` of
``yuhoo0302/Segment-Anything-Model-for-Medical-Images``) builds one *point table* per object and
takes its first ``k`` rows as the prompt of the ``k``-point strategies:

1. ``centre = (int(m10 / m00), int(m01 / m00))`` of the object's image moments: the mean ``x`` and
   ``y`` of its pixels, truncated. It is used whether or not it lies inside the object.
2. Foreground: the object's pixels as ``(x, y)`` in row-major order, every ``int(N / 5)``-th from
   index 0 (5 or 6 rows); row 0 is then replaced by the centre.
3. Background window: the tight box ``x0, y0, x1, y1`` with ``w = x1 - x0``, ``h = y1 - y0``
   (no ``+ 1``) is doubled about its centre: ``X1 = x0 - w / 2``, ``X2 = X1 + 2 w`` (likewise
   ``y``); then ``X1, Y1`` are clipped at 0 and ``X2, Y2`` at the image width and height (after
   ``X2`` was computed from the unclipped ``X1``). The window is ``x = int(X1) .. int(X1) +
   int(X2 - X1) - 1`` (likewise ``y``).
4. Background: the window's non-object pixels as ``(x, y)`` in row-major order, every
   ``int(M / 5)``-th from index 0.
5. Table = foreground rows, then background rows; labels = five 1s then five 0s.

``point1`` is row 0, ``point5`` rows 0-4, ``point5_neg5`` rows 0-9 with the labels 1,1,1,1,1,0,...
When the foreground gave 6 rows, row 5 is an object pixel that gets label 0 and only 4 background
points follow; this is what the released code does, and it is kept (the prompt's meta records it as
``huang2024_object_points_labelled_negative``). Where the released code would fail (fewer than 5
object or background pixels make the stride 0), the stride is 1 instead.
"""

from __future__ import annotations

import numpy as np

from samia.prompts.primitives import tight_box

N_FOREGROUND = 5
N_BACKGROUND = 5
BOX_RATIO = 2.0


def centre_point(mask: np.ndarray) -> np.ndarray:
    """``(2,)`` float64 ``(x, y)``: ``int(m10 / m00), int(m01 / m00)`` of the ``(H, W)`` bool mask."""
    ys, xs = np.nonzero(mask)
    count = float(len(xs))
    return np.array([int(float(xs.sum()) / count), int(float(ys.sum()) / count)], dtype=np.float64)


def _every_nth(points: np.ndarray, count: int) -> np.ndarray:
    """Rows ``0, s, 2s, ...`` with ``s = int(len / count)`` (1 when that is 0)."""
    return points[:: max(len(points) // count, 1)]


def background_window(mask: np.ndarray, ratio: float = BOX_RATIO) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` integers of the released code's enlarged box (``limit_rect`` then ``int``)."""
    height, width = mask.shape
    x0, y0, x1, y1 = (float(v) for v in tight_box(mask))
    w, h = x1 - x0, y1 - y0
    left = x0 - w * ratio / 2 + w / 2
    top = y0 - h * ratio / 2 + h / 2
    right, bottom = left + w * ratio, top + h * ratio
    left, top = max(left, 0.0), max(top, 0.0)
    right = float(width) if right >= width else right
    bottom = float(height) if bottom >= height else bottom
    return int(left), int(top), int(right - left), int(bottom - top)


def point_table(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The released code's point table of one object (module docstring).

    Args:
        mask: ``(H, W)`` bool object mask (non-empty).

    Returns:
        ``(coords, labels)``: ``(R, 2)`` float64 ``(x, y)`` rows and ``(10,)`` int64 labels (the
        first five 1, the rest 0); ``R`` is usually 10 or 11.
    """
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask)
    foreground = _every_nth(np.column_stack([xs, ys]), N_FOREGROUND)
    x, y, w, h = background_window(mask)
    rows, cols = np.nonzero(~mask[y : y + h, x : x + w])
    background = _every_nth(np.column_stack([cols + x, rows + y]), N_BACKGROUND)
    foreground = np.concatenate([centre_point(mask)[None], foreground[1:]])
    coords = np.concatenate([foreground, background]).astype(np.float64)
    labels = np.concatenate([np.ones(N_FOREGROUND, np.int64), np.zeros(N_BACKGROUND, np.int64)])
    return coords, labels


def first_points(mask: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Rows ``0 .. count - 1`` of :func:`point_table` with their labels, and the prompt's meta.

    Returns:
        ``(points (k, 2) float64, labels (k,) int64, meta)`` with ``k = min(count, rows)``; ``meta``
        holds ``point_rule`` and, when object pixels carry label 0, how many.
    """
    coords, labels = point_table(mask)
    k = min(count, len(coords), len(labels))
    points, chosen = coords[:k], labels[:k]
    meta: dict = {"point_rule": "huang2024_centre"}
    on_object = mask[points[:, 1].astype(np.int64), points[:, 0].astype(np.int64)]
    mislabelled = int(np.count_nonzero(on_object[1:] & (chosen[1:] == 0)))
    if mislabelled:
        meta["huang2024_object_points_labelled_negative"] = mislabelled
    return points, chosen, meta
