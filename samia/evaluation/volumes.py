"""Volume-level evaluation: one row per object, volume, volume strategy and selection rule
(``level = "volume"``), next to the slice-level rows of the same run.

A case's volume unit reads the image and label once, opens one
:class:`~samia.volume.VolumeSession` (each slice encoded at most once for every strategy and
selection rule of the case), and runs each strategy of :data:`~samia.volume.VOLUME_STRATEGIES`
on every object at once. Objects are label values (connected components are a slice-level option);
one with fewer than ``min_area`` voxels is skipped and counted. Ground-truth and predicted masks are
held for ``decode_batch`` objects at a time, so memory does not grow with the number of labels. The selection rules are ``single``
and ``predicted_iou`` (how each slice's mask is chosen); ``oracle`` needs each slice's truth and is a
slice-level rule only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from samia.data import Case
from samia.errors import InvalidImageError, InvalidLabelError
from samia.evaluation.host import EvaluatorHost
from samia.evaluation.rows import (
    Columns,
    mask_columns,
    object_columns,
    prompt_columns,
    result_row,
    unit_columns,
    volume_level_columns,
)
from samia.files import safe_name
from samia.io import write_mask
from samia.metrics import slice_dice
from samia.metrics.factors import object_factors
from samia.selection import Selection
from samia.transforms import preset_for
from samia.types import Volume
from samia.volume import (
    BOX3D_SETTINGS,
    KEY_SLICE_SETTINGS,
    ObjectVolume,
    PropagationSettings,
    VolumePrompt,
    VolumeSegmentation,
    VolumeSession,
    box3d_of_mask,
    clicked_prompt,
    correction_click,
    largest_slice,
    segment_volume,
    volume_prompt,
)
from samia.volume.memory import segment_volume_with_memory, volume_settings
from samia.volume.strategies import MEMORY_SUFFIX, Click3D, engine_strategy, plane

VOLUME_SELECTIONS = ("predicted_iou", "single")
"""The selection rules volume strategies report."""


class _Object:
    """One ground-truth object of a volume."""

    def __init__(self, case: Case, label: int, mask: np.ndarray) -> None:
        self.label = label
        self.name = case.label_name(label)
        self.mask = mask


def volume_labels(label: Volume, min_area: int) -> tuple[list[int], int]:
    """The label values of ``label`` with at least ``min_area`` voxels, and how many were smaller
    (counted without making a mask per value)."""
    counts = np.bincount(label.array.ravel())
    present = [int(v) for v in np.flatnonzero(counts) if v != 0]
    kept = [v for v in present if counts[v] >= min_area]
    return kept, len(present) - len(kept)


def settings_for(strategy: str, selection: str) -> PropagationSettings:
    """The propagation rules of ``strategy`` with the slice masks chosen by ``selection``."""
    defaults = KEY_SLICE_SETTINGS if strategy.startswith("keyslice") else BOX3D_SETTINGS
    return replace(defaults, output=selection)


def run_strategy(
    session: VolumeSession, strategy: str, prompts: list[VolumePrompt], settings: PropagationSettings
) -> VolumeSegmentation:
    """``prompts`` through the volume by the engine of ``strategy``: SAM 2's memory for a
    ``*_memory`` strategy (the model's own rule, :func:`~samia.volume.memory.volume_settings`),
    else the slice engine with ``settings``."""
    if strategy.endswith(MEMORY_SUFFIX):
        memory = volume_settings(session.predictor.model, "memory", box3d=True)
        return segment_volume_with_memory(session, prompts, memory)  # type: ignore[arg-type]
    return segment_volume(session, prompts, settings)


class VolumeUnit:
    """The volume rows of one case for an :class:`~samia.evaluation.runner.CaseEvaluator`."""

    def __init__(self, evaluator: EvaluatorHost, case: Case, image: Volume, label: Volume) -> None:
        self.evaluator = evaluator
        self.config = evaluator.config
        self.case = case
        self.image = image
        self.axis = self.config.reading.axis
        self.label = label
        self.values, self.skipped_small = volume_labels(label, max(self.config.reading.minimum_area, 1))
        self.preset = evaluator.fixed_preset or preset_for(image)
        self.objects: list[_Object] = []
        self._factors: dict[int, dict[str, float]] = {}

    def rows(self) -> list[Columns]:
        """Every volume row of the case.

        Raises:
            InvalidLabelError: the label volume holds no object at all (never skipped silently).
        """
        if not self.values:
            if not self.skipped_small:
                raise InvalidLabelError(
                    self.case.label_path, "label map has no object (all background); nothing to evaluate"
                )
            return []
        selections = [s for s in VOLUME_SELECTIONS if s in self.config.selections] or ["single"]
        rows: list[Columns] = []
        size = self.config.decode_batch
        with VolumeSession(self.evaluator.predictor, self.image, self.preset, self.axis, keep_all=True) as session:
            for start in range(0, len(self.values), size):  # masks of decode_batch objects at a time
                self.objects = [_Object(self.case, v, self.label.array == v) for v in self.values[start : start + size]]
                rows += self._object_rows(session, selections)
        return rows

    def _object_rows(self, session: VolumeSession, selections: list[Selection]) -> list[Columns]:
        """The rows of ``self.objects`` under every volume strategy and selection rule."""
        rows: list[Columns] = []
        for strategy in self.evaluator.volume_strategies:
            tracked = strategy.endswith(MEMORY_SUFFIX)  # no mask-selection rule: one row per object
            for selection in ["single"] if tracked else selections:
                self.evaluator.progress.report_unit_started(
                    f"{self.case.case_id} {strategy} ({selection})", len(self.objects)
                )
                settings = settings_for(strategy, selection)
                if engine_strategy(strategy) == "box3d_clicks":
                    rows += self._click_rows(session, strategy, settings, selection)
                    continue
                prompts = [volume_prompt(strategy, obj.mask, self.axis) for obj in self.objects]
                result = run_strategy(session, strategy, prompts, settings)
                self.evaluator.progress.report_prompts_done(len(self.objects))
                for index, (obj, prompt) in enumerate(zip(self.objects, prompts)):
                    answer = result.objects[index]
                    key = largest_slice(obj.mask, self.axis) if strategy == "slice_boxes" else answer.key_slices[0]
                    record = _prompt_record(prompt)
                    rows.append(self._row(obj, strategy, selection, answer, result.slices_encoded, record, key))
        return rows

    def _click_rows(
        self, session: VolumeSession, strategy: str, settings: PropagationSettings, selection: str
    ) -> list[Columns]:
        """``box3d`` then up to ``max_clicks`` corrections, all objects together at each click."""
        boxes = [box3d_of_mask(obj.mask) for obj in self.objects]
        clicks: list[list[Click3D]] = [[] for _ in self.objects]
        result = run_strategy(session, strategy, [clicked_prompt(b, [], self.axis) for b in boxes], settings)
        answers: list[ObjectVolume] = list(result.objects)
        encoded = result.slices_encoded
        rows = []
        for n_clicks in range(self.config.prompting.max_clicks + 1):
            if n_clicks:
                active = []
                for index, obj in enumerate(self.objects):
                    click = correction_click(answers[index].mask, obj.mask)
                    if click is not None:
                        clicks[index].append(click)
                        active.append(index)
                if active:
                    prompts = [clicked_prompt(boxes[i], clicks[i], self.axis) for i in active]
                    step = run_strategy(session, strategy, prompts, settings)
                    encoded += step.slices_encoded
                    for index, answer in zip(active, step.objects):
                        answers[index] = answer
            for index, obj in enumerate(self.objects):
                record = {
                    "box3d": boxes[index].to_list(),
                    "clicks": [[*c.voxel, c.label] for c in clicks[index]],
                }
                converged = n_clicks > len(clicks[index])
                key = boxes[index].middle(self.axis)
                rows.append(
                    self._row(obj, strategy, selection, answers[index], encoded, record, key, n_clicks, converged)
                )
        self.evaluator.progress.report_prompts_done(len(self.objects))
        return rows

    def _factors_of(self, obj: _Object) -> dict[str, float]:
        """The factors of the object on its largest slice (size, contrast, boundary there)."""
        if obj.label not in self._factors:
            index = largest_slice(obj.mask, self.axis)
            self._factors[obj.label] = object_factors(
                self.image.slice(index, self.axis), plane(obj.mask, index, self.axis)
            )
        return self._factors[obj.label]

    def _row(
        self,
        obj: _Object,
        strategy: str,
        selection: str,
        answer: ObjectVolume,
        encoded: int,
        prompt: dict[str, Any],
        key: int,
        n_clicks: int = 0,
        converged: bool = False,
    ) -> Columns:
        """The row of one object's answer (``encoded``: the encoder calls of the strategy's run)."""
        spacing = self.image.spacing
        in_plane = [s for a, s in enumerate(spacing) if a != self.axis]
        unit = unit_columns(
            self.config,
            self.evaluator.model,
            self.case,
            modality=self.image.modality,
            preset=self.preset.name,
            spacing_yx=(in_plane[0], in_plane[1]),
            spacing_source="header",
        )
        meta = {"converged": True} if converged else {}
        chosen = mask_columns(
            answer.mask,
            obj.mask,
            spacing,
            self.config.surface,
            selection=selection,
            candidate=0,
            predicted_iou=_mean_predicted_iou(answer),
        )
        decoded = sum(1 for step in answer.steps if step.source != "mask")
        dice_per_slice = slice_dice(answer.mask, obj.mask, self.axis)
        level = volume_level_columns(spacing[self.axis], key, encoded, decoded, dice_per_slice)
        return result_row(
            unit,
            object_columns(obj.name, obj.label, None, self._factors_of(obj)),
            prompt_columns(strategy, 0, prompt, meta, n_clicks=n_clicks),
            chosen,
            level,
            self._saved_mask(obj, strategy, selection, n_clicks, answer.mask),
        )

    def _saved_mask(self, obj: _Object, strategy: str, selection: str, n_clicks: int, mask: np.ndarray) -> str | None:
        """With ``--save-masks``: the mask as NIfTI on the image's grid, its path relative to the results."""
        if not self.config.save_masks:
            return None
        name = f"volume_l{obj.label}_{strategy}_k{n_clicks}_{selection}.nii.gz"
        relative = Path("masks") / safe_name(self.case.case_id) / name
        write_mask(self.evaluator.out / relative, mask, reference=self.image)
        return relative.as_posix()


def _mean_predicted_iou(answer: ObjectVolume) -> float:
    values = [step.predicted_iou for step in answer.steps if step.stop is None and np.isfinite(step.predicted_iou)]
    return float(np.mean(values)) if values else float("nan")


def _prompt_record(prompt: Any) -> dict[str, Any]:
    if prompt.box3d is not None:
        return {"box3d": prompt.box3d.to_list()}
    return {"key_slices": [{"slice": k.index, **k.prompt.to_record()} for k in prompt.key_slices]}


def check_volume(case: Case, image: object) -> Volume:
    """The case's image as a volume, or InvalidImageError: volume strategies need a 3D image."""
    if not isinstance(image, Volume):
        raise InvalidImageError(
            case.image_path,
            "is a 2D image; the volume strategies (box3d, keyslice_*, slice_boxes, box3d_clicks) need a volume",
        )
    return image
