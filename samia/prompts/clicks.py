"""Iterative click simulation: correct a prediction click by click, as an annotator would.

Click 1 is the point1 point (centroid rule). Each next click goes to the largest error region of the
current prediction: the biggest 8-connected component of the false negatives (a positive click) or
of the false positives (a negative click), whichever is larger (ties go to the false negatives), at
the component's interior point farthest from its boundary. The previous low-resolution logits are
fed back as ``mask_input``. All objects of an image are simulated together, one decoder call per
click.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from samia.predictor import Prediction, SamiaPredictor
from samia.prompts.primitives import deepest_point, positive_points
from samia.selection import Selection, choose_candidate
from samia.types import Prompt

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Click:
    """One click: ``point`` ``(x, y)`` pixels, ``label`` 1 positive / 0 negative, and why it is there
    (``"point1"``, ``"false_negative"``, ``"false_positive"`` or ``"replayed"``)."""

    point: np.ndarray
    label: int
    reason: str


@dataclass(frozen=True)
class ClickStep:
    """The state after ``n_clicks`` clicks on one object.

    Attributes:
        n_clicks: clicks so far (1..max).
        prompt: every click so far (the previous logits are not stored in the prompt record).
        prediction: the decoder's answer (multimask candidates, or the single mask).
        candidate: the chosen candidate index within ``prediction``.
        candidate_dice: every candidate's Dice against the ground truth.
        converged: True when no error was left to click on and this step repeats the previous one.
    """

    n_clicks: int
    prompt: Prompt
    prediction: Prediction
    candidate: int
    candidate_dice: list[float]
    converged: bool = False

    @property
    def mask(self) -> np.ndarray:
        return self.prediction.masks[self.candidate]


def _largest_component(region: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(region, structure=EIGHT_CONNECTED)
    if count == 0:
        return region
    sizes = np.bincount(labelled.ravel())[1:]
    return labelled == (int(np.argmax(sizes)) + 1)


def next_click(prediction: np.ndarray, truth: np.ndarray) -> Click | None:
    """The corrective click for ``prediction`` against ``truth`` (both ``(H, W)`` bool); None if equal."""
    missed = _largest_component(truth & ~prediction)
    extra = _largest_component(prediction & ~truth)
    if not missed.any() and not extra.any():
        return None
    if missed.sum() >= extra.sum():
        return Click(deepest_point(missed), 1, "false_negative")
    return Click(deepest_point(extra), 0, "false_positive")


def simulate_clicks(
    predictor: SamiaPredictor,
    truths: Sequence[np.ndarray],
    max_clicks: int,
    selection: Selection,
    replayed: Sequence[Sequence[Click]] | None = None,
    oracle_smoothing: float = 0.0,
) -> list[list[ClickStep]]:
    """Simulate up to ``max_clicks`` clicks on each object of the predictor's current image.

    Args:
        predictor: holds the image (``set_image`` done).
        truths: one ``(H, W)`` bool ground-truth mask per object (non-empty).
        max_clicks: clicks per object.
        selection: ``single`` uses the single-mask output; ``predicted_iou``/``oracle`` choose among
            the three multimask candidates at every click.
        replayed: recorded clicks per object to use instead of the error-region rule (prompt replay);
            an object's trajectory ends when its recorded clicks run out.
        oracle_smoothing: the ``oracle`` rule's Dice smoothing (``samia.selection.choose_candidate``).

    Returns:
        One list of exactly ``max_clicks`` :class:`ClickStep` per object; once an object has no
        error left (or no recorded click), its last step is repeated with ``converged=True``.
    """
    multimask = selection != "single"
    clicks: list[list[Click]] = []
    for index, truth in enumerate(truths):
        if replayed is not None:
            clicks.append(list(replayed[index][:1]))
        else:
            first, rule = positive_points(truth, 1)
            clicks.append([Click(first[0], 1, f"point1:{rule}")])
    trajectories: list[list[ClickStep]] = [[] for _ in truths]
    previous_logits: list[np.ndarray | None] = [None] * len(truths)
    for step in range(1, max_clicks + 1):
        active = [i for i in range(len(truths)) if len(clicks[i]) == step]
        prompts = [
            Prompt(
                points=np.stack([c.point for c in clicks[i]]),
                labels=np.array([c.label for c in clicks[i]]),
                mask_input=previous_logits[i],
                meta={"click_reasons": [c.reason for c in clicks[i]]},
            )
            for i in active
        ]
        predictions = predictor.predict_batch(prompts, multimask) if prompts else []
        for i, prompt, prediction in zip(active, prompts, predictions):
            candidate, candidate_dice = choose_candidate(prediction, truths[i], selection, oracle_smoothing)
            trajectories[i].append(ClickStep(step, prompt, prediction, candidate, candidate_dice))
            previous_logits[i] = prediction.low_res_logits[candidate]
            if step < max_clicks:
                following = _following_click(replayed, i, step, prediction.masks[candidate], truths[i])
                if following is not None:
                    clicks[i].append(following)
        for i in range(len(truths)):
            if i not in active and trajectories[i]:
                last = trajectories[i][-1]
                trajectories[i].append(
                    ClickStep(step, last.prompt, last.prediction, last.candidate, last.candidate_dice, converged=True)
                )
    return trajectories


def _following_click(
    replayed: Sequence[Sequence[Click]] | None, index: int, step: int, mask: np.ndarray, truth: np.ndarray
) -> Click | None:
    if replayed is not None:
        recorded = replayed[index]
        return recorded[step] if step < len(recorded) else None
    return next_click(mask, truth)
