"""Evaluate one model with prompt strategies over cases: one row per object x prompt x selection.

The runner only talks to the predictor (docs/architecture.md, layer 7). A :class:`CaseEvaluator`
holds one model and evaluates whole cases into a results store, in the driver's process
(:class:`LocalExecutor`) or in a Ray worker (``samia.evaluation.ray_executor``). Each unit of work (a
2D image or one slice of a volume) is encoded once; every point/box prompt of every object on it is
decoded in one batch per prompt structure, click trajectories advance all objects together, and
everything mode runs once per unit. Finished units are journaled atomically
(``samia.evaluation.store``), so a killed run resumes where it stopped and every row ends up exactly
once; a failing unit is recorded in ``errors.csv`` and the run goes on; input warnings (a spacing
assumed, values that cannot be HU, an anti-aliased label map) are recorded per case in
``warnings.csv``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samia.auto import generate_everything, instance_match, iou_matrix, oracle_match
from samia.data import Case, ObjectMask, SliceItem, iter_slice_items, load_case
from samia.embeddings import EmbeddingCache
from samia.errors import InputError, InputWarning, InvalidLabelError
from samia.evaluation.config import EvaluationConfig
from samia.evaluation.progress import ProgressHooks
from samia.evaluation.replay import PromptBook, read_prompts_file
from samia.evaluation.schema import SLICE_ROW_DEFAULTS, metric_columns
from samia.evaluation.store import NO_SLICE, VOLUME_UNIT, ResultsStore, unit_key
from samia.evaluation.volumes import VolumeUnit, check_volume
from samia.files import printable, safe_name
from samia.io import write_mask
from samia.metrics import segmentation_metrics
from samia.metrics.factors import object_factors
from samia.predictor import Prediction, SamiaPredictor
from samia.prompts import PromptStrategy, build_strategies
from samia.prompts.clicks import Click, simulate_clicks
from samia.prompts.seeding import prompt_rng
from samia.selection import choose_candidate
from samia.transforms import IntensityPreset, get_preset, preset_for, to_rgb_uint8
from samia.types import Prompt
from samia.version import __version__
from samia.volume import VOLUME_STRATEGIES

"""``slice`` value of rows from 2D images."""


@dataclass(frozen=True)
class CaseRun:
    """What evaluating one case did: units evaluated now, and units found already done."""

    case_id: str
    units_run: int
    units_skipped: int


@dataclass(frozen=True)
class _Job:
    object_index: int
    strategy: str
    variant: int
    prompt: Prompt


class _CaseWarnings:
    """The input warnings of one case, each distinct (file, message) once with a count."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    @contextmanager
    def capture(self, slice_index: int) -> Iterator[None]:
        """Record the :class:`InputWarning` issued inside the block; other warnings are shown as usual."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputWarning)
            yield
        for warning in caught:
            if not isinstance(warning.message, InputWarning):
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
                continue
            found = warning.message
            key = (found.path, found.problem)
            if key in self.records:
                self.records[key]["count"] += 1
            else:
                self.records[key] = {
                    "case": printable(self.case),
                    "slice": slice_index,
                    "path": printable(found.path),
                    "warning": type(found).__name__,
                    "message": printable(" ".join(found.problem.split())),
                    "count": 1,
                }


class CaseEvaluator:
    """One model evaluating whole cases of one :class:`EvaluationConfig` into ``store``.

    Args:
        config: the run.
        store: the run's results store (the worker's own handle on the shared results folder).
        progress: callbacks for the units and prompt decodings of the cases it evaluates.
    """

    def __init__(self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks | None = None) -> None:
        self.config = config
        self.store = store
        self.progress = progress or ProgressHooks()
        self.out = Path(config.out)
        self.book: PromptBook | None = None if config.prompts_file is None else read_prompts_file(config.prompts_file)
        names = list(config.strategies)
        if self.book is not None and not names:
            names = sorted(self.book.strategies)
        self.volume_strategies = [name for name in names if name in VOLUME_STRATEGIES]
        slice_names = [name for name in names if name not in VOLUME_STRATEGIES]
        self.strategies: list[PromptStrategy] = build_strategies(
            slice_names, config.prompting.strategy_parameters(), config.prompting.protocol
        )
        self.fixed_preset = None if config.reading.preset is None else get_preset(config.reading.preset)
        self.model = config.model.load()
        self.predictor = SamiaPredictor(
            self.model, EmbeddingCache(max_items=4, directory=config.embedding_cache_dir), config.decode_batch
        )

    def provenance(self) -> dict[str, Any]:
        """What ``config.yaml`` records besides the options: samia version, weights, strategies, protocol."""
        return {
            "samia_version": __version__,
            "model": self.model.name,
            "weights_sha256": self.model.weights_sha256,
            "input_size": self.model.input_size,
            "normalization": self.model.normalization,
            "input_pipeline": self.model.input_pipeline,
            "strategies": {
                **{s.name: s.description for s in self.strategies},
                **{name: VOLUME_STRATEGIES[name] for name in self.volume_strategies},
            },
            "protocol": self.config.prompting.strategy_parameters().to_record(),
        }

    def run_case(self, case: Case) -> CaseRun:
        """Evaluate the units of ``case`` not yet in the store, and record its input warnings."""
        case_warnings = _CaseWarnings(case.case_id)
        ran, skipped = self._run_case(case, case_warnings)
        self.store.record_warnings(case.case_id, list(case_warnings.records.values()))
        return CaseRun(case.case_id, ran, skipped)

    def _run_case(self, case: Case, case_warnings: _CaseWarnings) -> tuple[int, int]:
        """Run the case's slice units (slice strategies) and its volume unit (volume strategies)."""
        ran = skipped = 0
        failed = False
        if self.strategies:
            ran, skipped, failed = self._run_slices(case, case_warnings)
        if self.volume_strategies:
            key = unit_key(case.case_id, VOLUME_UNIT)
            if self.store.has_unit(key):
                skipped += 1
            else:
                try:
                    with case_warnings.capture(NO_SLICE):
                        image, label = load_case(case)
                        unit = VolumeUnit(self, case, check_volume(case, image), check_volume(case, label))
                        rows = unit.rows()
                except Exception as error:
                    path = getattr(error, "path", str(case.image_path))
                    self.store.record_error(key, case.case_id, NO_SLICE, str(path), error)
                    failed = True
                else:
                    meta = {"skipped_small": unit.skipped_small, "n_objects": len(unit.values)}
                    self.store.write_unit(key, rows, meta)
                    ran += 1
        if not failed:
            self.store.mark_case_done(case.case_id)
        return ran, skipped

    def _run_slices(self, case: Case, case_warnings: _CaseWarnings) -> tuple[int, int, bool]:
        """``(units run, units skipped, failed)`` of the case's slice units."""
        ran = skipped = seen = 0
        failed = False
        reading = self.config.reading
        items = iter_slice_items(case, reading.axis, reading.minimum_area, reading.connected_components)
        while True:
            try:
                with case_warnings.capture(NO_SLICE):
                    item = next(items)
                seen += 1
            except StopIteration:
                if seen == 0:  # never skip empty ground truth silently
                    error = InvalidLabelError(
                        case.label_path, "label map has no object (all background); nothing to evaluate"
                    )
                    self.store.record_error(
                        unit_key(case.case_id, NO_SLICE), case.case_id, NO_SLICE, str(case.label_path), error
                    )
                    return ran, skipped, True
                break
            except Exception as error:  # any failure to read a case is that case's failure
                path = getattr(error, "path", str(case.image_path))
                self.store.record_error(unit_key(case.case_id, NO_SLICE), case.case_id, NO_SLICE, path, error)
                return ran, skipped, True
            slice_index = NO_SLICE if item.slice_index is None else item.slice_index
            key = unit_key(case.case_id, slice_index)
            if self.store.has_unit(key):
                skipped += 1
                continue
            try:
                with case_warnings.capture(slice_index):
                    rows = self._evaluate_item(item, slice_index)
            except Exception as error:
                self.store.record_error(key, case.case_id, slice_index, str(case.image_path), error)
                failed = True
                continue
            self.store.write_unit(key, rows, {"skipped_small": item.skipped_small, "n_objects": len(item.objects)})
            ran += 1
        return ran, skipped, failed

    def _preset(self, item: SliceItem) -> IntensityPreset:
        if self.fixed_preset is not None:
            return self.fixed_preset
        return preset_for(item.image)

    def _evaluate_item(self, item: SliceItem, slice_index: int) -> list[dict[str, Any]]:
        if not item.objects:
            return []
        preset = self._preset(item)
        rgb = to_rgb_uint8(item.image, preset)
        context = _ItemContext(self, item, slice_index, preset)
        jobs = self._static_jobs(context)
        description = item.case.case_id + ("" if item.slice_index is None else f" slice {item.slice_index}")
        self.progress.report_unit_started(description, len(jobs) + self._dynamic_prompts(len(item.objects)))
        self.predictor.set_image(rgb)
        rows = self._static_rows(context, jobs)
        if any(s.kind == "clicks" for s in self.strategies):
            rows += self._click_rows(context)
        if any(s.kind == "everything" for s in self.strategies):
            rows += self._everything_rows(context)
        return rows

    def _dynamic_prompts(self, n_objects: int) -> int:
        """Decodings of the click and everything strategies on a unit with ``n_objects`` objects."""
        count = 0
        if any(s.kind == "clicks" for s in self.strategies):
            count += n_objects * self.config.prompting.max_clicks * len(self.config.selections)
        if any(s.kind == "everything" for s in self.strategies):
            count += self.config.everything.points_per_side**2
        return count

    def _static_jobs(self, context: _ItemContext) -> list[_Job]:
        jobs = []
        static = {s.name: s for s in self.strategies if s.kind == "static"}
        for index, obj in enumerate(context.item.objects):
            if self.book is not None:
                key = context.object_key(obj)
                for strategy, variant, prompt in self.book.static.get(key, []):
                    if strategy in static:
                        jobs.append(_Job(index, strategy, variant, self._fitted(key, prompt, obj.mask.shape)))
                continue
            for rule in static.values():
                rng = prompt_rng(
                    self.config.seed,
                    context.item.case.case_id,
                    context.slice_index,
                    obj.label,
                    obj.component,
                    rule.name,
                )
                for variant, prompt in enumerate(rule(obj.mask, rng)):
                    jobs.append(_Job(index, rule.name, variant, prompt))
        return jobs

    def _fitted(self, key: tuple[str, int, int, int], prompt: Prompt, shape: tuple[int, ...]) -> Prompt:
        """A replayed prompt fitted to the image; an impossible one fails the unit naming its line."""
        try:
            return prompt.fitted_to(shape)
        except ValueError as error:  # refused, never scored
            where = self.book.where(key) if self.book is not None else self.config.prompts_file or "prompt"
            raise InputError(where, f"impossible prompt: {error}") from None

    def _check_replayed(self, key: tuple[str, int, int, int], clicks: list[Click], shape: tuple[int, ...]) -> None:
        if clicks:
            points = np.stack([click.point for click in clicks])
            self._fitted(key, Prompt(points=points, labels=np.array([click.label for click in clicks])), shape)

    def _decoded_chunks(self, jobs: list[_Job]) -> Iterator[tuple[_Job, tuple[Prediction, Prediction]]]:
        """``(job, (multimask, single))`` decoded ``decode_batch`` jobs at a time (bounded memory)."""
        size = self.config.decode_batch
        for start in range(0, len(jobs), size):
            chunk = jobs[start : start + size]
            yield from zip(chunk, self.predictor.predict_batch_both([j.prompt for j in chunk]))
            self.progress.report_prompts_done(len(chunk))

    def _static_rows(self, context: _ItemContext, jobs: list[_Job]) -> list[dict[str, Any]]:
        rows = []
        scored = self._decoded_chunks(jobs)  # decode, score and drop the masks chunk by chunk
        for job, (multi, single) in scored:
            obj = context.item.objects[job.object_index]
            base = context.base_row(obj, job.strategy, job.variant, job.prompt)
            for selection in self.config.selections:
                prediction = single if selection == "single" else multi
                candidate, candidate_dice = choose_candidate(
                    prediction,
                    obj.mask,
                    selection,
                    self.config.prompting.rules.oracle_smoothing,
                )
                rows.append(context.scored_row(base, obj, prediction, candidate, selection, candidate_dice))
        return rows

    def _click_rows(self, context: _ItemContext) -> list[dict[str, Any]]:
        """Click rows, ``decode_batch`` objects at a time (their trajectories hold every click's masks)."""
        objects = context.item.objects
        size = self.config.decode_batch
        rows = []
        for start in range(0, len(objects), size):
            rows += self._click_rows_of(context, objects[start : start + size])
        return rows

    def _click_rows_of(self, context: _ItemContext, objects: list[ObjectMask]) -> list[dict[str, Any]]:
        rows = []
        for selection in self.config.selections:
            replayed = None
            if self.book is not None:
                keys = [(context.object_key(obj), selection) for obj in objects]
                if not any(key in self.book.clicks for key in keys):
                    continue
                replayed = [self.book.clicks.get(key, []) for key in keys]
                for (object_key, _), clicks, obj in zip(keys, replayed, objects):
                    self._check_replayed(object_key, clicks, obj.mask.shape)
            trajectories = simulate_clicks(
                self.predictor,
                [obj.mask for obj in objects],
                self.config.prompting.max_clicks,
                selection,
                replayed,
                self.config.prompting.rules.oracle_smoothing,
            )
            self.progress.report_prompts_done(len(objects) * self.config.prompting.max_clicks)
            for obj, trajectory in zip(objects, trajectories):
                for step in trajectory:
                    meta = {**step.prompt.meta, "converged": step.converged}
                    prompt = Prompt(step.prompt.points, step.prompt.labels, meta=meta)
                    base = context.base_row(obj, "clicks", 0, prompt, n_clicks=step.n_clicks)
                    rows.append(
                        context.scored_row(base, obj, step.prediction, step.candidate, selection, step.candidate_dice)
                    )
        return rows

    def _everything_rows(self, context: _ItemContext) -> list[dict[str, Any]]:
        generated = generate_everything(self.predictor, self.config.everything)
        self.progress.report_prompts_done(self.config.everything.points_per_side**2)
        objects = context.item.objects
        ious = iou_matrix(generated.masks, np.stack([obj.mask for obj in objects]))
        best = oracle_match(ious)
        matched = instance_match(ious, self.config.instance_iou).object_to_mask
        rows = []
        for index, obj in enumerate(objects):
            chosen = int(best[index])
            if chosen >= 0:
                prompt = Prompt(points=generated.points[chosen][None], labels=np.ones(1, dtype=np.int64))
                prediction = Prediction(
                    generated.masks[chosen][None],
                    generated.predicted_iou[chosen][None],
                    np.zeros((1, 0, 0), np.float32),
                )
            else:
                prompt = Prompt()
                prediction = Prediction(
                    np.zeros((1, *obj.mask.shape), bool),
                    np.full(1, np.nan, np.float32),
                    np.zeros((1, 0, 0), np.float32),
                )
            base = context.base_row(obj, "everything", 0, prompt)
            base.update(
                n_generated_masks=len(generated),
                best_match_iou=float(ious[chosen, index]) if chosen >= 0 else 0.0,
                instance_matched=bool(matched[index] >= 0),
            )
            rows.append(context.scored_row(base, obj, prediction, 0, "oracle", []))
        return rows


class _ItemContext:
    """Row building for one unit: identity columns, factors (computed once per object), metrics."""

    def __init__(self, evaluator: CaseEvaluator, item: SliceItem, slice_index: int, preset: IntensityPreset) -> None:
        self.evaluator = evaluator
        self.item = item
        self.slice_index = slice_index
        self.preset = preset
        self._factors: dict[int, dict[str, float]] = {}

    def object_key(self, obj: ObjectMask) -> tuple[str, int, int, int]:
        return (
            self.item.case.case_id,
            self.slice_index,
            int(obj.label),
            -1 if obj.component is None else int(obj.component),
        )

    def factors(self, obj: ObjectMask) -> dict[str, float]:
        if id(obj) not in self._factors:
            self._factors[id(obj)] = object_factors(self.item.image, obj.mask)
        return self._factors[id(obj)]

    def base_row(
        self, obj: ObjectMask, strategy: str, variant: int, prompt: Prompt, n_clicks: int = 0
    ) -> dict[str, Any]:
        item, model, config = self.item, self.evaluator.model, self.evaluator.config
        return {
            "dataset": item.case.dataset,
            "case": item.case.case_id,
            "slice": self.slice_index,
            "object": obj.name,
            "label": int(obj.label),
            "component": -1 if obj.component is None else int(obj.component),
            "modality": item.image.modality,
            "model": model.name,
            "weights_sha256": model.weights_sha256,
            "input_pipeline": model.input_pipeline,
            "protocol": config.prompting.protocol,
            "strategy": strategy,
            "variant": variant,
            "n_clicks": n_clicks,
            "seed": config.seed,
            "prompt": json.dumps(prompt.to_record()),
            "prompt_meta": json.dumps(prompt.meta, sort_keys=True),
            "jitter_band": str(prompt.meta.get("jitter_band", "")),
            "jitter_offset_px": float(prompt.meta.get("jitter_offset_px", np.nan)),
            "n_generated_masks": -1,
            "best_match_iou": np.nan,
            "instance_matched": None,
            "preset": self.preset.name,
            "spacing_y": float(item.image.spacing[0]),
            "spacing_x": float(item.image.spacing[1]),
            "spacing_source": item.image.spacing_source,
            "image_path": printable(str(item.case.image_path)),
            "label_path": printable(str(item.case.label_path)),
            **self.factors(obj),
            **SLICE_ROW_DEFAULTS,
        }

    def scored_row(
        self,
        base: dict[str, Any],
        obj: ObjectMask,
        prediction: Prediction,
        candidate: int,
        selection: str,
        candidate_dice: list[float],
    ) -> dict[str, Any]:
        config = self.evaluator.config
        mask = prediction.masks[candidate]
        metrics = segmentation_metrics(
            mask,
            obj.mask,
            self.item.image.spacing,
            config.surface.nsd_tolerance_mm,
            config.surface.nsd_variant,
            config.surface.nsd_zero_at_dice,
        )
        row = {
            **base,
            "selection": selection,
            "candidate": candidate,
            "predicted_iou": float(prediction.iou_predictions[candidate]),
            "candidate_dice": candidate_dice,
            "candidate_predicted_iou": [float(v) for v in prediction.iou_predictions] if candidate_dice else [],
            **metric_columns(metrics),
            "mask_path": None,
        }
        if config.save_masks:
            relative = (
                Path("masks")
                / safe_name(base["case"])
                / (
                    f"s{base['slice']}_l{base['label']}_c{base['component']}_{base['strategy']}"
                    f"_v{base['variant']}_k{base['n_clicks']}_{selection}.png"
                )
            )
            write_mask(self.evaluator.out / relative, mask, reference=self.item.image)
            row["mask_path"] = relative.as_posix()
        return row


class LocalExecutor:
    """Evaluates the cases one after another in this process, with one model."""

    @contextmanager
    def start(self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks) -> Iterator[_LocalWorker]:
        """Load the model; the worker is usable inside the block."""
        yield _LocalWorker(CaseEvaluator(config, store, progress))


class _LocalWorker:
    def __init__(self, evaluator: CaseEvaluator) -> None:
        self.evaluator = evaluator
        self.provenance = evaluator.provenance()

    def run(self, cases: Iterable[Case]) -> Iterator[CaseRun]:
        for case in cases:
            yield self.evaluator.run_case(case)
