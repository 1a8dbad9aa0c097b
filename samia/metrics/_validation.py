"""Input checks shared by the overlap and surface metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as a ``bool`` array.

    Args:
        mask: a ``bool`` array, or an integer array holding only 0 and 1.
        name: the argument's name, used in the error message.

    Raises:
        ValueError: the array is neither ``bool`` nor a 0/1 integer array (for instance
            probabilities, or a 0/255 image).
    """
    array = np.asarray(mask)
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be a bool mask or a 0/1 integer array, got dtype {array.dtype}; "
            "threshold probabilities before computing metrics"
        )
    if np.any((array != 0) & (array != 1)):
        values = np.unique(array)[:5].tolist()
        raise ValueError(f"{name} must hold only 0 and 1, found values such as {values}")
    return array.astype(bool)


def as_mask_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``pred`` and ``gt`` are masks of one shape and return them as ``bool`` arrays.

    Raises:
        ValueError: a mask is not binary (see :func:`as_mask`), or the shapes differ.
    """
    pred_mask, gt_mask = as_mask(pred, "pred"), as_mask(gt, "gt")
    if pred_mask.shape != gt_mask.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {pred_mask.shape} and gt {gt_mask.shape}")
    return pred_mask, gt_mask


def as_spacing(spacing: Sequence[float], ndim: int) -> np.ndarray:
    """Return ``spacing`` as a float64 array of length ``ndim``.

    Args:
        spacing: the size of a pixel (voxel) along each array axis, in mm: ``(y, x)`` for 2D,
            ``(z, y, x)`` for 3D.
        ndim: the number of axes of the masks.

    Raises:
        ValueError: the masks are not 2D or 3D, ``spacing`` has not one entry per axis, or an entry
            is not a finite positive number.
    """
    if ndim not in (2, 3):
        raise ValueError(f"surface metrics need 2D or 3D masks, got {ndim} dimensions")
    values = np.asarray(spacing, dtype=np.float64)
    if values.shape != (ndim,):
        raise ValueError(f"spacing must have one entry per mask axis ({ndim}), got {tuple(np.atleast_1d(values))}")
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(f"spacing entries must be finite and positive, got {tuple(values)}")
    return values
