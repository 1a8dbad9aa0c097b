"""The one builder of result rows: every row of ``results.parquet``, slice-level or volume-level.

A row is put together from groups of columns, each made by one function here: the unit's (case,
model, run options, intensity preset, spacing), the object's (identity and difficulty factors), the
prompt's, the chosen mask's (its metrics against the truth) and the level's (slice index or the
volume columns). :func:`result_row` joins them and checks the result has exactly the columns of
:data:`~samia.evaluation.schema.RESULT_SCHEMA`, so no strategy family can write a row of its own
shape.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from samia.data import Case
from samia.evaluation.config import EvaluationConfig
from samia.evaluation.schema import RESULT_COLUMNS, SLICE_ROW_DEFAULTS, metric_columns
from samia.files import printable
from samia.metrics import segmentation_metrics
from samia.metrics.settings import SurfaceSettings
from samia.models.interface import Segmenter

Columns = dict[str, Any]
"""Some of a row's columns, by name."""


def unit_columns(
    config: EvaluationConfig,
    model: Segmenter,
    case: Case,
    *,
    modality: str,
    preset: str,
    spacing_yx: tuple[float, float],
    spacing_source: str,
) -> Columns:
    """The columns every row of one unit shares.

    Args:
        config: the run.
        model: the evaluated model.
        case: the unit's case.
        modality: the image's modality.
        preset: the name of the intensity preset the image was read with.
        spacing_yx: the in-plane pixel spacing ``(row, column)`` in mm.
        spacing_source: where that spacing came from (:data:`samia.types.SPACING_SOURCES`).
    """
    return {
        "dataset": case.dataset,
        "case": case.case_id,
        "modality": modality,
        "model": model.name,
        "weights_sha256": model.weights_sha256,
        "input_pipeline": model.input_pipeline,
        "protocol": config.prompting.protocol,
        "seed": config.seed,
        "preset": preset,
        "spacing_y": float(spacing_yx[0]),
        "spacing_x": float(spacing_yx[1]),
        "spacing_source": spacing_source,
        "image_path": printable(str(case.image_path)),
        "label_path": printable(str(case.label_path)),
    }


def object_columns(name: str, label: int, component: int | None, factors: dict[str, float]) -> Columns:
    """The object's identity (``component`` None: a whole label value) and its difficulty factors."""
    return {
        "object": name,
        "label": int(label),
        "component": -1 if component is None else int(component),
        **factors,
    }


def prompt_columns(
    strategy: str,
    variant: int,
    record: dict[str, Any],
    meta: dict[str, Any],
    *,
    n_clicks: int = 0,
    n_generated_masks: int = -1,
    best_match_iou: float = float("nan"),
    instance_matched: bool | None = None,
) -> Columns:
    """The prompt's columns: its strategy, its record (JSON, image pixels) and meta data (jitter band
    and offset read from it); the last three only for everything mode."""
    return {
        "strategy": strategy,
        "variant": variant,
        "n_clicks": n_clicks,
        "prompt": json.dumps(record),
        "prompt_meta": json.dumps(meta, sort_keys=True),
        "jitter_band": str(meta.get("jitter_band", "")),
        "jitter_offset_px": float(meta.get("jitter_offset_px", np.nan)),
        "n_generated_masks": n_generated_masks,
        "best_match_iou": best_match_iou,
        "instance_matched": instance_matched,
    }


def mask_columns(
    mask: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    surface: SurfaceSettings,
    *,
    selection: str,
    candidate: int,
    predicted_iou: float,
    candidate_dice: Sequence[float] = (),
    candidate_predicted_iou: Sequence[float] = (),
) -> Columns:
    """The chosen mask's columns: how it was chosen and its metrics against the truth.

    Args:
        mask: the chosen mask, ``bool``, 2D ``(H, W)`` or 3D ``(Z, Y, X)``.
        truth: the ground-truth mask of the same shape.
        spacing: the voxel spacing in mm, one value per axis of ``mask``.
        surface: the surface-distance settings of the run.
        selection: the selection rule that chose it.
        candidate: the index of the chosen candidate among the model's masks.
        predicted_iou: the model's IoU estimate of the chosen mask.
        candidate_dice: every candidate's Dice (the oracle rule's view), empty otherwise.
        candidate_predicted_iou: every candidate's IoU estimate, alongside ``candidate_dice``.
    """
    metrics = segmentation_metrics(
        mask, truth, spacing, surface.nsd_tolerance_mm, surface.nsd_variant, surface.nsd_zero_at_dice
    )
    return {
        "selection": selection,
        "candidate": candidate,
        "predicted_iou": float(predicted_iou),
        "candidate_dice": [float(v) for v in candidate_dice],
        "candidate_predicted_iou": [float(v) for v in candidate_predicted_iou],
        **metric_columns(metrics),
    }


def slice_level_columns(slice_index: int) -> Columns:
    """The level columns of a slice-level row (``slice_index`` -1 for a 2D image)."""
    return {"slice": slice_index, **SLICE_ROW_DEFAULTS}


def volume_level_columns(
    spacing_z: float, key_slice: int, slices_encoded: int, slices_decoded: int, dice_per_slice: np.ndarray
) -> Columns:
    """The level columns of a volume row.

    Args:
        spacing_z: the spacing along the slicing axis in mm.
        key_slice: the slice the prompt was given on.
        slices_encoded: encoder calls of the strategy's run.
        slices_decoded: slices this object was decoded on.
        dice_per_slice: ``(Z,)`` float, each slice's Dice along the axis (NaN where neither mask has
            a pixel); the slices with a value become ``slice_offset`` / ``slice_dice``.
    """
    present = np.flatnonzero(np.isfinite(dice_per_slice))
    return {
        "level": "volume",
        "slice": -1,
        "spacing_z": float(spacing_z),
        "key_slice": int(key_slice),
        "slices_encoded": int(slices_encoded),
        "slices_decoded": int(slices_decoded),
        "slice_offset": [float(i - key_slice) for i in present],
        "slice_dice": [float(dice_per_slice[i]) for i in present],
    }


def result_row(
    unit: Columns,
    obj: Columns,
    prompt: Columns,
    mask: Columns,
    level: Columns,
    mask_path: str | None,
    mask_rle: str | None = None,
) -> Columns:
    """One result row joined from its column groups, with where its mask was saved (``--save-masks``)
    and, for a slice row, the mask itself (:func:`samia.io.mask_runs.encode_mask`).

    Raises:
        ValueError: the groups do not make exactly the columns of the result schema (a bug in a
            strategy family, never a user's input).
    """
    row = {**unit, **obj, **prompt, **mask, **level, "mask_path": mask_path, "mask_rle": mask_rle}
    if set(row) != set(RESULT_COLUMNS):
        missing = sorted(set(RESULT_COLUMNS) - set(row))
        extra = sorted(set(row) - set(RESULT_COLUMNS))
        raise ValueError(f"result row does not match the schema: missing {missing}, unexpected {extra}")
    return row
