"""Evaluate a model with prompt strategies over a dataset: one row per object x prompt x selection.

The runner only talks to the predictor (DESIGN.md layer 3). Each unit of work (a 2D image or one
slice of a volume) is encoded once; every prompt of every object on it is decoded in one batch per
prompt structure. Finished units are journaled atomically (``samia.evaluate.store``), so a killed
run resumes where it stopped and every row ends up exactly once; a failing unit is recorded in
``errors.csv`` and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

import samia
from samia.data import Case, SliceItem, build_manifest, iter_slice_items
from samia.embeddings import EmbeddingCache
from samia.errors import ConfigurationError, SamiaError
from samia.evaluate.config import EvaluationConfig, read_config, write_config
from samia.evaluate.store import ResultsStore, unit_key
from samia.evaluate.summary import summarize
from samia.io import write_mask
from samia.metrics import dice, segmentation_metrics
from samia.models import build_model
from samia.predictor import Prediction, SamiaPredictor
from samia.prompts import get_strategy
from samia.transforms import IntensityPreset, default_preset, get_preset, to_rgb_uint8
from samia.types import Prompt

NO_SLICE = -1
"""``slice`` value of rows from 2D images."""

ROW_ORDER = ["case", "slice", "label", "component", "strategy", "variant", "selection"]


@dataclass(frozen=True)
class EvaluationOutcome:
    """What a finished (or resumed) run holds: all rows, their summary, the failures."""

    results: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    skipped_small: int
    units_run: int
    units_skipped: int


@dataclass(frozen=True)
class _Job:
    object_index: int
    strategy: str
    variant: int
    prompt: Prompt


def object_rng(seed: int, *identity: Any) -> np.random.Generator:
    """A generator seeded by ``seed`` and the object's identity, independent of evaluation order."""
    digest = hashlib.sha256(json.dumps([str(part) for part in identity]).encode()).digest()
    return np.random.default_rng([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class Evaluator:
    """Runs one :class:`EvaluationConfig` (see :func:`evaluate`)."""

    def __init__(self, config: EvaluationConfig) -> None:
        self.config = config
        self.out = Path(config.out)
        self.strategies = [get_strategy(name) for name in config.strategies]
        self.fixed_preset = None if config.preset is None else get_preset(config.preset)
        self.model = build_model(config.model, config.checkpoint, config.device)
        cache = EmbeddingCache(max_items=4, directory=config.embedding_cache_dir)
        self.predictor = SamiaPredictor(self.model, cache)
        self.store = ResultsStore(self.out)

    def provenance(self) -> dict[str, Any]:
        return {
            "samia_version": samia.__version__,
            "model": self.model.name,
            "weights_sha256": self.model.weights_sha256,
            "input_size": self.model.input_size,
            "normalization": self.model.normalization,
            "strategies": {s.name: s.description for s in self.strategies},
        }

    def check_resume(self) -> None:
        """Refuse to mix rows of a different run into an existing results folder."""
        path = self.out / "config.yaml"
        if path.is_file():
            differences = read_config(path).differences(self.config)
            if differences:
                listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in differences.items())
                raise ConfigurationError(
                    f"{self.out} holds results of a different run ({listed}); use another --out folder"
                )
        write_config(path, self.config, self.provenance())

    def run(self, on_progress: Callable[[str], None] | None = None, on_case_total: Callable[[int], None] | None = None) -> EvaluationOutcome:
        self.check_resume()
        manifest_errors: list[SamiaError] = []
        cases = build_manifest(self.config.data, self.config.layout, self.config.modality, errors=manifest_errors)
        for error in manifest_errors:
            path = getattr(error, "path", self.config.data)
            self.store.record_error(unit_key(Path(path).name, NO_SLICE), Path(path).name, NO_SLICE, path, error)
        if self.config.limit is not None:
            cases = cases[: self.config.limit]
        if on_case_total:
            on_case_total(len(cases))
        units_run = units_skipped = 0
        for case in cases:
            if self.store.case_done(case.case_id):
                units_skipped += 1
            else:
                ran, skipped = self._run_case(case)
                units_run += ran
                units_skipped += skipped
            if on_progress:
                on_progress(case.case_id)
        results, units = self.store.consolidate(ROW_ORDER)
        summary = summarize(results)
        summary.to_csv(self.out / "summary.csv", index=False)
        skipped_small = int(units["skipped_small"].sum()) if "skipped_small" in units else 0
        return EvaluationOutcome(results, summary, self.store.errors(), skipped_small, units_run, units_skipped)

    def _run_case(self, case: Case) -> tuple[int, int]:
        ran = skipped = 0
        failed = False
        items = iter_slice_items(case, self.config.axis, self.config.min_area, self.config.connected_components)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except SamiaError as error:  # the case cannot be read: record it and go on
                path = getattr(error, "path", str(case.image_path))
                self.store.record_error(unit_key(case.case_id, NO_SLICE), case.case_id, NO_SLICE, path, error)
                return ran, skipped
            slice_index = NO_SLICE if item.slice_index is None else item.slice_index
            key = unit_key(case.case_id, slice_index)
            if self.store.has_unit(key):
                skipped += 1
                continue
            try:
                rows = self._evaluate_item(item, slice_index)
            except Exception as error:  # noqa: BLE001 - a long run records the failure and goes on
                self.store.record_error(key, case.case_id, slice_index, str(case.image_path), error)
                failed = True
                continue
            self.store.write_unit(key, rows, {"skipped_small": item.skipped_small, "n_objects": len(item.objects)})
            ran += 1
        if not failed:
            self.store.mark_case_done(case.case_id)
        return ran, skipped

    def _preset(self, item: SliceItem) -> IntensityPreset:
        if self.fixed_preset is not None:
            return self.fixed_preset
        return default_preset(item.image.modality, item.image.is_rgb)

    def _evaluate_item(self, item: SliceItem, slice_index: int) -> list[dict[str, Any]]:
        if not item.objects:
            return []
        preset = self._preset(item)
        self.predictor.set_image(to_rgb_uint8(item.image, preset))
        jobs = []
        for index, obj in enumerate(item.objects):
            for strategy in self.strategies:
                rng = object_rng(self.config.seed, item.case.case_id, slice_index, obj.label, obj.component, strategy.name)
                for variant, prompt in enumerate(strategy(obj.mask, rng)):
                    jobs.append(_Job(index, strategy.name, variant, prompt))
        prompts = [job.prompt for job in jobs]
        selections = self.config.selections
        rows = []
        for job, (multi, single) in zip(jobs, self.predictor.predict_batch_both(prompts)):
            obj = item.objects[job.object_index]
            base = self._base_row(item, slice_index, obj, job, preset)
            for selection in selections:
                prediction = single if selection == "single" else multi
                rows.append(self._row(base, item, obj.mask, prediction, selection))
        return rows

    def _base_row(self, item: SliceItem, slice_index: int, obj: Any, job: _Job, preset: IntensityPreset) -> dict[str, Any]:
        return {
            "dataset": item.case.dataset,
            "case": item.case.case_id,
            "slice": slice_index,
            "object": obj.name,
            "label": int(obj.label),
            "component": -1 if obj.component is None else int(obj.component),
            "modality": item.image.modality,
            "model": self.model.name,
            "weights_sha256": self.model.weights_sha256,
            "strategy": job.strategy,
            "variant": job.variant,
            "seed": self.config.seed,
            "prompt": json.dumps(job.prompt.to_record()),
            "prompt_meta": json.dumps(job.prompt.meta, sort_keys=True),
            "preset": preset.name,
            "spacing_y": float(item.image.spacing[0]),
            "spacing_x": float(item.image.spacing[1]),
            "image_path": str(item.case.image_path),
            "label_path": str(item.case.label_path),
        }

    def _row(self, base: dict[str, Any], item: SliceItem, gt: np.ndarray, prediction: Prediction, selection: str) -> dict[str, Any]:
        candidate_dice = [float(dice(mask, gt)) for mask in prediction.masks]
        if selection == "oracle":
            candidate = int(np.nanargmax(candidate_dice))
        elif selection == "predicted_iou":
            candidate = prediction.best_index
        else:
            candidate = 0
        mask = prediction.masks[candidate]
        metrics = segmentation_metrics(mask, gt, item.image.spacing, self.config.nsd_tolerance_mm)
        row = {
            **base,
            "selection": selection,
            "candidate": candidate,
            "predicted_iou": float(prediction.iou_predictions[candidate]),
            "candidate_dice": candidate_dice,
            "candidate_predicted_iou": [float(v) for v in prediction.iou_predictions],
            **{k: (float(v) if k in ("dice", "iou", "hd95", "assd", "nsd") else int(v)) for k, v in metrics.items()},
            "mask_path": None,
        }
        if self.config.save_masks:
            relative = Path("masks") / _safe(base["case"]) / (
                f"s{base['slice']}_l{base['label']}_c{base['component']}_{base['strategy']}"
                f"_v{base['variant']}_{selection}.png"
            )
            write_mask(self.out / relative, mask, reference=item.image)
            row["mask_path"] = relative.as_posix()
        return row


def evaluate(config: EvaluationConfig, on_progress: Callable[[str], None] | None = None,
             on_case_total: Callable[[int], None] | None = None) -> EvaluationOutcome:
    """Run (or resume) ``config`` and write ``results.parquet``, ``summary.csv``, ``errors.csv`` and
    ``config.yaml`` into ``config.out``.

    Args:
        config: the run.
        on_progress: called with the case id after each case (progress bars).
        on_case_total: called once with the number of cases to go through.
    """
    return Evaluator(config).run(on_progress, on_case_total)
