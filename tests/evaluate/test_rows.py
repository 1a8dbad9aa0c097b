"""The one row builder: rows are joined from column groups and must match the results schema."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from samia.evaluation.rows import mask_columns, object_columns, prompt_columns, result_row, slice_level_columns
from samia.evaluation.schema import RESULT_COLUMNS
from samia.metrics.factors import FACTOR_NAMES
from samia.metrics.settings import SurfaceSettings

Groups = tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]


def _groups() -> Groups:
    """A box prompt's row groups; the unit's columns stand in as whatever the others leave."""
    truth = np.zeros((32, 32), bool)
    truth[8:20, 10:24] = True  # 168 pixels
    mask = np.zeros_like(truth)
    mask[8:20, 10:20] = True  # 120 of them
    obj = object_columns("liver", 1, None, dict.fromkeys(FACTOR_NAMES, 0.0))
    prompt = prompt_columns("box", 0, {"box": [10, 8, 23, 19]}, {"jitter_band": "0-5", "jitter_offset_px": 2.0})
    chosen = mask_columns(
        mask, truth, (1.0, 1.0), SurfaceSettings(), selection="single", candidate=0, predicted_iou=0.9
    )
    level = slice_level_columns(3)
    taken = {**obj, **prompt, **chosen, **level, "mask_path": None}
    unit = {name: None for name in RESULT_COLUMNS if name not in taken}
    return unit, obj, prompt, chosen, level


def test_column_groups_hold_the_prompt_and_the_chosen_masks_metrics() -> None:
    unit, obj, prompt, chosen, level = _groups()
    assert chosen["dice"] == pytest.approx(2 * 120 / (120 + 168))
    assert chosen["gt_area"] == 168 and chosen["pred_area"] == 120
    assert obj["component"] == -1 and obj["label"] == 1
    assert prompt["jitter_band"] == "0-5" and prompt["jitter_offset_px"] == 2.0
    assert prompt["n_generated_masks"] == -1 and np.isnan(prompt["best_match_iou"])
    assert {"dataset", "case", "model", "spacing_y", "preset"} <= set(unit)  # what only a unit knows
    row = result_row(unit, obj, prompt, chosen, level, None)
    assert set(row) == set(RESULT_COLUMNS)
    assert row["slice"] == 3 and row["level"] == "slice" and np.isnan(row["spacing_z"])


def test_result_row_refuses_a_row_that_is_not_the_schema() -> None:
    unit, obj, prompt, chosen, level = _groups()
    with pytest.raises(ValueError, match=r"missing \['dice'\]"):
        result_row(unit, obj, prompt, {k: v for k, v in chosen.items() if k != "dice"}, level, None)
    with pytest.raises(ValueError, match=r"unexpected \['made_up'\]"):
        result_row(unit, {**obj, "made_up": 1}, prompt, chosen, level, None)
