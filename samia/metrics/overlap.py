"""Overlap metrics: confusion counts, Dice and IoU.

As in nnU-Net, the raw counts are the primary result; ratios are derived from them, so results can
be pooled over cases (sum the counts) as well as averaged per case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samia.metrics._validation import as_mask_pair


@dataclass(frozen=True)
class ConfusionCounts:
    """Pixel (voxel) counts of one prediction against one ground truth.

    Attributes:
        tp: pixels in both ``pred`` and ``gt``.
        fp: pixels in ``pred`` only.
        fn: pixels in ``gt`` only.
        tn: pixels in neither.
    """

    tp: int
    fp: int
    fn: int
    tn: int


def confusion_counts(pred: np.ndarray, gt: np.ndarray) -> ConfusionCounts:
    """Count true/false positives/negatives of ``pred`` against ``gt``.

    Args:
        pred: predicted mask, ``bool`` (or 0/1 integer), any shape.
        gt: ground-truth mask, same shape and dtype rules as ``pred``.

    Returns:
        The counts; they sum to ``pred.size``.

    Raises:
        ValueError: the shapes differ (the message names both), or a mask is not binary.
    """
    pred, gt = as_mask_pair(pred, gt)
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(gt)) - tp
    return ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=pred.size - tp - fp - fn)


def dice_from_counts(counts: ConfusionCounts) -> float:
    """Dice = 2TP / (2TP + FP + FN), in [0, 1].

    Empty rule: NaN when ``pred`` and ``gt`` are both empty (TP = FP = FN = 0); 0.0 when exactly
    one of them is empty.
    """
    denominator = 2 * counts.tp + counts.fp + counts.fn
    return 2 * counts.tp / denominator if denominator else float("nan")


def iou_from_counts(counts: ConfusionCounts) -> float:
    """IoU (Jaccard) = TP / (TP + FP + FN), in [0, 1].

    Empty rule: NaN when ``pred`` and ``gt`` are both empty (TP = FP = FN = 0); 0.0 when exactly
    one of them is empty.
    """
    denominator = counts.tp + counts.fp + counts.fn
    return counts.tp / denominator if denominator else float("nan")


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice = 2TP / (2TP + FP + FN) of ``pred`` against ``gt``; see :func:`dice_from_counts`.

    Args:
        pred, gt: masks of one shape, ``bool`` (or 0/1 integer).

    Returns:
        Dice in [0, 1]; NaN when both masks are empty, 0.0 when exactly one is.
    """
    return dice_from_counts(confusion_counts(pred, gt))


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU = TP / (TP + FP + FN) of ``pred`` against ``gt``; see :func:`iou_from_counts`.

    Args:
        pred, gt: masks of one shape, ``bool`` (or 0/1 integer).

    Returns:
        IoU in [0, 1]; NaN when both masks are empty, 0.0 when exactly one is.
    """
    return iou_from_counts(confusion_counts(pred, gt))
