"""Propagation that loses its object while the model stays confident: the mask's area falls by more
than half over five or more slices while the predicted IoU stays above 0.7 on every one of them.

That pattern (a 3D T1 box gave Dice 0.29 with a mean predicted IoU of 0.78) means each slice's
prompt, made from the previous mask, is tighter than the object: the error feeds itself, and the
model's own estimate does not show it. :func:`find_shrinkage` detects it in an object's steps and
:meth:`Shrinkage.advice` says what to try.
"""

from __future__ import annotations

from dataclasses import dataclass

from samia.volume.engine import ObjectVolume, SliceStep

AREA_KEPT_BELOW = 0.5
"""The area at the end of the run divided by the area at its start, below which it shrank."""

MIN_SLICES = 5
"""The fewest slices a shrinking run spans."""

CONFIDENT_IOU = 0.7
"""The predicted IoU every slice of the run stays above."""


@dataclass(frozen=True)
class Shrinkage:
    """One confident shrinking run of an object's propagation.

    Attributes:
        direction: ``up`` (increasing slice index) or ``down``.
        first_slice, last_slice: where the run starts and ends (slice indices along the axis).
        first_area, last_area: the mask's pixels there.
    """

    direction: str
    first_slice: int
    last_slice: int
    first_area: int
    last_area: int

    def advice(self) -> str:
        """One line: what happened and which settings to try."""
        return (
            f"the mask shrank from {self.first_area} to {self.last_area} pixels between slices {self.first_slice} "
            f"and {self.last_slice} ({self.direction}) while the model's predicted IoU stayed above {CONFIDENT_IOU}: "
            "propagation is probably losing the object; try --multimask, a key slice where it shrinks "
            f"(--slice {self.last_slice} --box ... --propagate), or --projection box_mask or points"
        )


def find_shrinkage(obj: ObjectVolume) -> Shrinkage | None:
    """The longest confident shrinking run of ``obj``'s propagation (from its key slice outward, each
    direction on its own), or None."""
    keys = [step for step in obj.steps if step.source in ("key", "mask")]
    found: Shrinkage | None = None
    for direction in ("up", "down"):
        moving = [step for step in obj.steps if step.source == direction and step.stop is None]
        moving.sort(key=lambda step: step.slice, reverse=direction == "down")
        start = [min(keys, key=lambda key: abs(key.slice - moving[0].slice))] if keys and moving else []
        run = _longest_shrinking_run(start + moving)
        if run is not None and (
            found is None or abs(run[1].slice - run[0].slice) > abs(found.last_slice - found.first_slice)
        ):
            found = Shrinkage(direction, run[0].slice, run[1].slice, run[0].area, run[1].area)
    return found


def _longest_shrinking_run(steps: list[SliceStep]) -> tuple[SliceStep, SliceStep] | None:
    """The first and last step of the longest stretch of ``steps`` (in propagation order) with every
    predicted IoU above :data:`CONFIDENT_IOU`, at least :data:`MIN_SLICES` long, whose last area is
    below :data:`AREA_KEPT_BELOW` times its first."""
    best = None
    for i, first in enumerate(steps):
        if not first.predicted_iou > CONFIDENT_IOU or first.area <= 0:
            continue
        for j in range(i + 1, len(steps)):
            if not steps[j].predicted_iou > CONFIDENT_IOU:
                break
            if j - i + 1 >= MIN_SLICES and steps[j].area < AREA_KEPT_BELOW * first.area:
                if best is None or j - i > best[1] - best[0]:
                    best = (i, j)
    return None if best is None else (steps[best[0]], steps[best[1]])
