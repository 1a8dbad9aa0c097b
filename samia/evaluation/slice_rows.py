"""The slice-level strategy families: the rows of one unit (a 2D image or one slice of a volume).

One function per family, each taking the :class:`SliceUnit` whose image the predictor holds:
:func:`static_rows` (point and box strategies, drawn from their rules or replayed, decoded in
batches), :func:`click_rows` (simulated corrective clicks, all objects' trajectories together) and
:func:`everything_rows` (the automatic mask generator, matched to the objects). Every row is made
by :func:`samia.evaluation.rows.result_row`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samia.auto import generate_everything, instance_match, iou_matrix, oracle_match
from samia.data import ObjectMask, SliceItem
from samia.errors import InputError
from samia.evaluation.host import EvaluatorHost
from samia.evaluation.replay import ObjectKey
from samia.evaluation.rows import (
    Columns,
    mask_columns,
    object_columns,
    prompt_columns,
    result_row,
    slice_level_columns,
    unit_columns,
)
from samia.files import safe_name
from samia.io import write_mask
from samia.io.mask_runs import encode_mask
from samia.metrics.factors import object_factors
from samia.predictor import Prediction
from samia.prompts.clicks import Click, simulate_clicks
from samia.prompts.seeding import prompt_rng
from samia.selection import Selection, choose_candidate
from samia.transforms import IntensityPreset
from samia.types import Prompt


@dataclass(frozen=True)
class StaticJob:
    """One point/box prompt of one object, to be decoded with the others of its unit."""

    object_index: int
    strategy: str
    variant: int
    prompt: Prompt


class SliceUnit:
    """One unit being evaluated: its objects, their factors (computed once each) and its rows.

    Args:
        host: the case evaluator running it.
        item: the 2D image and its objects.
        slice_index: the unit's slice, -1 for a 2D image.
        preset: the intensity preset the image was read with.
    """

    def __init__(self, host: EvaluatorHost, item: SliceItem, slice_index: int, preset: IntensityPreset) -> None:
        self.host = host
        self.item = item
        self.slice_index = slice_index
        image = item.image
        self.columns = unit_columns(
            host.config,
            host.model,
            item.case,
            modality=image.modality,
            preset=preset.name,
            spacing_yx=(image.spacing[0], image.spacing[1]),
            spacing_source=image.spacing_source,
        )
        self._factors: dict[int, dict[str, float]] = {}

    def object_key(self, obj: ObjectMask) -> ObjectKey:
        """The object as prompt records name it: ``(case, slice, label, component or -1)``."""
        component = -1 if obj.component is None else int(obj.component)
        return (self.item.case.case_id, self.slice_index, int(obj.label), component)

    def object_columns(self, obj: ObjectMask) -> Columns:
        if id(obj) not in self._factors:
            self._factors[id(obj)] = object_factors(self.item.image, obj.mask)
        return object_columns(obj.name, obj.label, obj.component, self._factors[id(obj)])

    def row(
        self,
        obj: ObjectMask,
        prompt: Columns,
        prediction: Prediction,
        candidate: int,
        selection: str,
        dice: list[float],
    ) -> Columns:
        """The row of ``prediction``'s mask ``candidate`` chosen by ``selection`` (``dice``: every
        candidate's Dice when the rule looked at them)."""
        config = self.host.config
        mask = prediction.masks[candidate]
        scores = prediction.iou_predictions
        chosen = mask_columns(
            mask,
            obj.mask,
            self.item.image.spacing,
            config.surface,
            selection=selection,
            candidate=candidate,
            predicted_iou=float(scores[candidate]),
            candidate_dice=dice,
            candidate_predicted_iou=[float(v) for v in scores] if dice else [],
        )
        mask_path = self._saved_mask(prompt, obj, selection, mask) if config.save_masks else None
        level = slice_level_columns(self.slice_index)
        return result_row(self.columns, self.object_columns(obj), prompt, chosen, level, mask_path, encode_mask(mask))

    def _saved_mask(self, prompt: Columns, obj: ObjectMask, selection: str, mask: np.ndarray) -> str:
        """The mask as PNG on the image's grid; its path relative to the results folder."""
        component = -1 if obj.component is None else int(obj.component)
        name = (
            f"s{self.slice_index}_l{int(obj.label)}_c{component}_{prompt['strategy']}"
            f"_v{prompt['variant']}_k{prompt['n_clicks']}_{selection}.png"
        )
        relative = Path("masks") / safe_name(self.item.case.case_id) / name
        write_mask(self.host.out / relative, mask, reference=self.item.image)
        return relative.as_posix()

    def fitted(self, key: ObjectKey, prompt: Prompt) -> Prompt:
        """A replayed prompt fitted to the image; an impossible one fails the unit naming its line."""
        try:
            return prompt.fitted_to(self.item.image.array.shape[:2])
        except ValueError as error:  # refused, never scored
            book, config = self.host.book, self.host.config
            where = book.where(key) if book is not None else config.prompts_file or "prompt"
            raise InputError(where, f"impossible prompt: {error}") from None


def static_jobs(unit: SliceUnit) -> list[StaticJob]:
    """The point/box prompts of every object: replayed from the prompt book, or drawn by each rule
    from the run's seed and the object's identity."""
    host = unit.host
    static = {s.name: s for s in host.strategies if s.kind == "static"}
    jobs = []
    for index, obj in enumerate(unit.item.objects):
        key = unit.object_key(obj)
        if host.book is not None:
            for strategy, variant, prompt in host.book.static.get(key, []):
                if strategy in static:
                    jobs.append(StaticJob(index, strategy, variant, unit.fitted(key, prompt)))
            continue
        for rule in static.values():
            rng = prompt_rng(host.config.seed, key[0], unit.slice_index, obj.label, obj.component, rule.name)
            for variant, prompt in enumerate(rule(obj.mask, rng)):
                jobs.append(StaticJob(index, rule.name, variant, prompt))
    return jobs


def static_rows(unit: SliceUnit, jobs: list[StaticJob]) -> list[Columns]:
    """The rows of the point/box prompts: one per job and selection rule."""
    config = unit.host.config
    rows = []
    for job, (multi, single) in _decoded_chunks(unit.host, jobs):  # masks dropped chunk by chunk
        obj = unit.item.objects[job.object_index]
        prompt = prompt_columns(job.strategy, job.variant, job.prompt.to_record(), job.prompt.meta)
        for selection in config.selections:
            prediction = single if selection == "single" else multi
            smoothing = config.prompting.rules.oracle_smoothing
            candidate, dice = choose_candidate(prediction, obj.mask, selection, smoothing)
            rows.append(unit.row(obj, prompt, prediction, candidate, selection, dice))
    return rows


def _decoded_chunks(
    host: EvaluatorHost, jobs: list[StaticJob]
) -> Iterator[tuple[StaticJob, tuple[Prediction, Prediction]]]:
    """``(job, (multimask, single))`` decoded ``decode_batch`` jobs at a time (bounded memory)."""
    size = host.config.decode_batch
    for start in range(0, len(jobs), size):
        chunk = jobs[start : start + size]
        yield from zip(chunk, host.predictor.predict_batch_both([j.prompt for j in chunk]))
        host.progress.report_prompts_done(len(chunk))


def click_rows(unit: SliceUnit) -> list[Columns]:
    """The rows of simulated clicks, ``decode_batch`` objects at a time (their trajectories hold
    every click's masks): one per object, click and selection rule."""
    objects = unit.item.objects
    size = unit.host.config.decode_batch
    rows = []
    for start in range(0, len(objects), size):
        for selection in unit.host.config.selections:
            rows += _click_rows_of(unit, objects[start : start + size], selection)
    return rows


def _click_rows_of(unit: SliceUnit, objects: list[ObjectMask], selection: Selection) -> list[Columns]:
    host = unit.host
    prompting = host.config.prompting
    replayed = None
    if host.book is not None:
        keys = [(unit.object_key(obj), selection) for obj in objects]
        if not any(key in host.book.clicks for key in keys):
            return []
        replayed = [host.book.clicks.get(key, []) for key in keys]
        for (object_key, _), clicks in zip(keys, replayed):
            _check_replayed(unit, object_key, clicks)
    truths = [obj.mask for obj in objects]
    trajectories = simulate_clicks(
        host.predictor, truths, prompting.max_clicks, selection, replayed, prompting.rules.oracle_smoothing
    )
    host.progress.report_prompts_done(len(objects) * prompting.max_clicks)
    rows = []
    for obj, trajectory in zip(objects, trajectories):
        for step in trajectory:
            meta = {**step.prompt.meta, "converged": step.converged}
            prompt = prompt_columns("clicks", 0, step.prompt.to_record(), meta, n_clicks=step.n_clicks)
            rows.append(unit.row(obj, prompt, step.prediction, step.candidate, selection, step.candidate_dice))
    return rows


def _check_replayed(unit: SliceUnit, key: ObjectKey, clicks: list[Click]) -> None:
    """Refuse replayed clicks outside the image, naming their line."""
    if clicks:
        points = np.stack([click.point for click in clicks])
        unit.fitted(key, Prompt(points=points, labels=np.array([click.label for click in clicks])))


def everything_rows(unit: SliceUnit) -> list[Columns]:
    """The rows of everything mode: the generator runs once, each object is scored with its best
    matching mask (the oracle match) and counted as found when the one-to-one instance match at
    ``instance_iou`` pairs it."""
    host = unit.host
    generated = generate_everything(host.predictor, host.config.everything)
    host.progress.report_prompts_done(host.config.everything.points_per_side**2)
    objects = unit.item.objects
    ious = iou_matrix(generated.masks, np.stack([obj.mask for obj in objects]))
    best = oracle_match(ious)
    matched = instance_match(ious, host.config.instance_iou).object_to_mask
    no_logits = np.zeros((1, 0, 0), np.float32)
    rows = []
    for index, obj in enumerate(objects):
        chosen = int(best[index])
        if chosen >= 0:
            record = Prompt(points=generated.points[chosen][None], labels=np.ones(1, dtype=np.int64)).to_record()
            prediction = Prediction(generated.masks[chosen][None], generated.predicted_iou[chosen][None], no_logits)
        else:
            record = Prompt().to_record()
            empty = np.zeros((1, *obj.mask.shape), bool)
            prediction = Prediction(empty, np.full(1, np.nan, np.float32), no_logits)
        prompt = prompt_columns(
            "everything",
            0,
            record,
            {},
            n_generated_masks=len(generated),
            best_match_iou=float(ious[chosen, index]) if chosen >= 0 else 0.0,
            instance_matched=bool(matched[index] >= 0),
        )
        rows.append(unit.row(obj, prompt, prediction, 0, "oracle", []))
    return rows
