"""Mask selection rules: which of a prediction's candidate masks a benchmark keeps.

``oracle`` keeps the candidate of highest Dice against the ground truth (what the papers report),
``predicted_iou`` the model's own first choice (what a user of SAM gets), ``single`` the
single-mask output (multimask output off). Static prompts and every click of a click trajectory
use the same rule (:func:`choose_candidate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from samia.metrics import dice

if TYPE_CHECKING:  # the rule needs no torch: reports import this module
    from samia.predictor import Prediction

Selection = Literal["oracle", "predicted_iou", "single"]
SELECTIONS: tuple[Selection, ...] = ("oracle", "predicted_iou", "single")


def smoothed_dice(mask: np.ndarray, truth: np.ndarray, smoothing: float) -> float:
    """``(2 |A & B| + s) / (|A| + |B| + s)`` of two ``(H, W)`` bool masks (Huang et al.'s ranking)."""
    intersection = float(np.count_nonzero(mask & truth))
    total = float(np.count_nonzero(mask) + np.count_nonzero(truth))
    return (2.0 * intersection + smoothing) / (total + smoothing)


def choose_candidate(
    prediction: Prediction, truth: np.ndarray, selection: Selection, oracle_smoothing: float = 0.0
) -> tuple[int, list[float]]:
    """The candidate a selection rule keeps, and every candidate's (unsmoothed) Dice against ``truth``.

    Args:
        prediction: ``M`` candidate masks on the ground truth's grid.
        truth: ``(H, W)`` bool ground truth.
        selection: the rule (module docstring); ``single`` returns 0 (pass the single-mask output).
        oracle_smoothing: when > 0, ``oracle`` ranks by :func:`smoothed_dice` with this smoothing
            (ties: the first candidate, as ``numpy.argmax``).
    """
    truth = np.asarray(truth, dtype=bool)
    candidate_dice = [float(dice(mask, truth)) for mask in prediction.masks]
    if selection == "oracle":
        if oracle_smoothing > 0:
            ranked = [smoothed_dice(mask, truth, oracle_smoothing) for mask in prediction.masks]
            return int(np.argmax(ranked)), candidate_dice
        return int(np.nanargmax(candidate_dice)), candidate_dice
    if selection == "predicted_iou":
        return prediction.best_index, candidate_dice
    return 0, candidate_dice
