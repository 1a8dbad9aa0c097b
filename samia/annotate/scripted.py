"""A scripted annotator: the click-simulation rules driving the annotation session engine, to make a
complete annotation folder (log, label maps, study file) without a person.

SAM-assisted: per ground-truth object, its tight box, then corrective clicks by the rule of
:func:`samia.prompts.clicks.next_click` (the largest error region, at its deepest point) until the
draft's Dice reaches ``target_dice`` or ``max_clicks`` clicks were made (a click that lowers the
Dice is undone and ends the clicking), then accept; on a volume
this is done on the object's largest slice and the mask is propagated. Manual: the object's outline
as polygons (OpenCV contours simplified by one pixel), on every slice where it appears.

Event times come from a :class:`Effort` model (seconds a person needs per interaction) on a
simulated clock, so the timing columns of its report are the effort model's, stated as such.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from samia.annotate.cases import AnnotationCase, find_cases
from samia.annotate.drafts import Edit
from samia.annotate.log import write_study_file
from samia.annotate.session import AnnotationSession
from samia.io.formats import image_stem, is_supported
from samia.metrics.overlap import dice
from samia.models.interface import Segmenter
from samia.predictor import SamiaPredictor
from samia.prompts.clicks import next_click
from samia.prompts.primitives import tight_box


@dataclass(frozen=True)
class Effort:
    """Seconds a person needs per interaction (defaults: rough figures for a trained annotator)."""

    start: float = 3.0
    box: float = 2.5
    click: float = 1.5
    vertex: float = 0.6
    accept: float = 1.0
    propagate: float = 2.0


class SimulatedClock:
    """A clock that moves only when told: ``now`` seconds since the epoch."""

    def __init__(self, start: float = 1.7e9) -> None:
        self.now = float(start)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def _polygons(mask: np.ndarray) -> list[tuple[float, ...]]:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = []
    for contour in contours:
        simplified = cv2.approxPolyDP(contour, 1.0, True).reshape(-1, 2)
        if len(simplified) < 3:  # a sliver: its pixels as a polygon around them
            simplified = contour.reshape(-1, 2)
        if len(simplified) >= 3:
            polygons.append(tuple(float(v) for v in simplified.ravel()))
    return polygons


def _assisted(
    session: AnnotationSession, truth: np.ndarray, clock: SimulatedClock, effort: Effort, target: float, clicks: int
) -> None:
    clock.advance(effort.box)
    draft = session.edit(Edit("box", tuple(float(v) for v in tight_box(truth))))
    score = dice(draft.mask, truth)
    for _ in range(clicks):
        click = next_click(draft.mask, truth)
        if score >= target or click is None:
            break
        clock.advance(effort.click)
        draft = session.edit(Edit("point", tuple(float(v) for v in click.point), positive=bool(click.label)))
        better = dice(draft.mask, truth)
        if better < score:  # the click made it worse: take it back and stop, as a person would
            clock.advance(effort.click)
            draft = session.undo()
            break
        score = better


def _manual(session: AnnotationSession, truth: np.ndarray, clock: SimulatedClock, effort: Effort) -> None:
    for polygon in _polygons(truth):
        clock.advance(effort.vertex * len(polygon) / 2)
        session.edit(Edit("polygon", polygon))


def annotate_case(
    case: AnnotationCase,
    out: Path,
    model: Segmenter | None,
    clock: SimulatedClock,
    effort: Effort = Effort(),
    target_dice: float = 0.9,
    max_clicks: int = 5,
) -> AnnotationSession:
    """Annotate every ground-truth object of ``case`` into ``out`` (rules: module docstring)."""
    from samia.io import read_image, read_label

    if case.ground_truth is None:
        raise ValueError(f"case {case.name} has no ground truth to script an annotation from")
    image = read_image(case.image_path, modality=case.modality)
    truth = np.asarray(read_label(case.ground_truth).array)
    predictor = SamiaPredictor(model) if model is not None else None
    session = AnnotationSession(
        image, out, case.name, predictor, names=case.label_names, source=case.image_path, clock=clock
    )
    for value in (int(v) for v in np.unique(truth) if v):
        target = truth == value
        clock.advance(effort.start)
        session.new_object(case.label_names.get(value), label=value)
        planes: list[int | None] = [None]  # a 2D image: its one plane
        if session.is_volume:  # assisted: the largest slice, then propagation; manual: every slice
            areas = target.sum(axis=(1, 2))
            planes = [int(np.argmax(areas))] if predictor is not None else [int(i) for i in np.flatnonzero(areas)]
        for index in planes:
            plane = target if index is None else target[index]
            if index is not None:
                session.go_to(index)
            if predictor is not None:
                _assisted(session, plane, clock, effort, target_dice, max_clicks)
            else:
                _manual(session, plane, clock, effort)
            clock.advance(effort.accept)
            session.accept()
        if session.is_volume and predictor is not None:
            clock.advance(effort.propagate)
            session.propagate()
    return session


def annotate_scripted(
    data: Path,
    out: Path,
    model: Segmenter | None,
    model_name: str | None = None,
    effort: Effort = Effort(),
    target_dice: float = 0.9,
    max_clicks: int = 5,
    start: float = 1.7e9,
    rater: str | None = None,
    truth: Path | None = None,
) -> Path:
    """Annotate every case of ``data`` that has ground truth into ``out``; returns ``out``.

    Args:
        rater: the rater's name recorded in ``out`` (as ``samia annotate --rater``).
        truth: a folder of label maps named as the cases (one rater's folder of a multi-rater
            dataset, ``raters/<name>``) drawn instead of the dataset's ground truth; cases without
            one are skipped.
    """
    cases, _ = find_cases(Path(data))
    if truth is not None:
        cases = [replace(case, ground_truth=_label_file(Path(truth), case.name)) for case in cases]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_study_file(out, Path(data), model_name, "manual" if model is None else "assisted", rater)
    clock = SimulatedClock(start)
    for case in (c for c in cases if c.ground_truth is not None):
        annotate_case(case, out, model, clock, effort, target_dice, max_clicks)
        clock.advance(effort.start)
    return out


def _label_file(folder: Path, case: str) -> Path | None:
    """The supported file of ``folder`` whose stem is ``case``; None without one."""
    return next((p for p in sorted(folder.iterdir()) if is_supported(p) and image_stem(p) == case), None)
