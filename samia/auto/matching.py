"""Matching generated masks to ground-truth objects.

Two rules, because they answer different questions:

- *oracle match* (the papers' protocol): each ground-truth object takes the generated mask with the
  highest IoU, even if another object takes the same mask — an upper bound no user can reach;
- *instance matching* (deployable): a one-to-one assignment maximising total IoU (Hungarian), a pair
  counting as a true positive when its IoU is at least ``iou_threshold``; unmatched generated masks
  are false positives, unmatched objects false negatives. F1 = 2TP / (2TP + FP + FN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


def iou_matrix(generated: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` and ``(J, H, W)`` bool -> ``(K, J)`` float64 IoU (0 where both are empty)."""
    pixels = int(np.prod(objects.shape[1:]))
    flat_generated = generated.reshape(len(generated), pixels).astype(np.float32)
    flat_objects = objects.reshape(len(objects), pixels).astype(np.float32)
    intersection = flat_generated @ flat_objects.T
    union = flat_generated.sum(1)[:, None] + flat_objects.sum(1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0).astype(np.float64)


@dataclass(frozen=True)
class InstanceMatch:
    """One-to-one matching of an image's generated masks and its objects.

    Attributes:
        object_to_mask: ``(J,)`` int, the generated mask matched to each object, -1 when none reaches
            the IoU threshold.
        true_positives, false_positives, false_negatives: counts for F1.
    """

    object_to_mask: np.ndarray
    true_positives: int
    false_positives: int
    false_negatives: int


def oracle_match(ious: np.ndarray) -> np.ndarray:
    """``(K, J)`` IoU -> ``(J,)`` index of each object's best generated mask (-1 if ``K == 0``)."""
    if ious.shape[0] == 0:
        return -np.ones(ious.shape[1], dtype=np.int64)
    return np.argmax(ious, axis=0).astype(np.int64)


def instance_match(ious: np.ndarray, iou_threshold: float = 0.5) -> InstanceMatch:
    """Hungarian one-to-one matching on ``(K, J)`` IoU; pairs under ``iou_threshold`` do not count."""
    n_generated, n_objects = ious.shape
    object_to_mask = -np.ones(n_objects, dtype=np.int64)
    if n_generated and n_objects:
        rows, cols = linear_sum_assignment(ious, maximize=True)
        good = ious[rows, cols] >= iou_threshold
        object_to_mask[cols[good]] = rows[good]
    tp = int((object_to_mask >= 0).sum())
    return InstanceMatch(object_to_mask, tp, n_generated - tp, n_objects - tp)
