"""The result-row schema: every column of ``results.parquet`` with its type, declared once.

The runner builds rows with exactly these keys, the journal writes each unit with this schema (an
empty unit is an empty table of it), ``results.parquet`` is written with it, and readers (prompt
replay, ``samia report``) check a results file against it before they use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from samia.metrics.factors import FACTOR_NAMES

_LIST_OF_FLOATS = pa.list_(pa.float64())

RESULT_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    # identity of the object and its prompt
    ("dataset", pa.string()),
    ("case", pa.string()),
    ("level", pa.string()),  # "slice" (a 2D image or one slice of a volume) or "volume"
    ("slice", pa.int64()),  # -1 for a 2D image and for volume rows
    ("object", pa.string()),
    ("label", pa.int64()),
    ("component", pa.int64()),  # -1 for a whole label value
    ("modality", pa.string()),
    ("model", pa.string()),
    ("weights_sha256", pa.string()),
    ("input_pipeline", pa.string()),
    ("protocol", pa.string()),
    ("strategy", pa.string()),
    ("variant", pa.int64()),
    ("n_clicks", pa.int64()),
    ("seed", pa.int64()),
    ("prompt", pa.string()),  # JSON: points, labels, box in image pixels
    ("prompt_meta", pa.string()),  # JSON
    ("jitter_band", pa.string()),
    ("jitter_offset_px", pa.float64()),
    ("n_generated_masks", pa.int64()),  # everything mode; -1 otherwise
    ("best_match_iou", pa.float64()),
    ("instance_matched", pa.bool_()),  # everything mode; null otherwise
    ("preset", pa.string()),
    ("spacing_y", pa.float64()),  # mm
    ("spacing_x", pa.float64()),  # mm
    ("spacing_z", pa.float64()),  # mm, the slicing axis of volume rows; NaN for slice rows
    ("spacing_source", pa.string()),  # samia.types.SPACING_SOURCES
    ("image_path", pa.string()),
    ("label_path", pa.string()),
    *((name, pa.float64()) for name in FACTOR_NAMES),
    # the chosen mask and its scores
    ("selection", pa.string()),
    ("candidate", pa.int64()),
    ("predicted_iou", pa.float64()),
    ("candidate_dice", _LIST_OF_FLOATS),
    ("candidate_predicted_iou", _LIST_OF_FLOATS),
    ("dice", pa.float64()),
    ("iou", pa.float64()),
    ("hd95", pa.float64()),  # mm
    ("assd", pa.float64()),  # mm
    ("nsd", pa.float64()),
    ("tp", pa.int64()),
    ("fp", pa.int64()),
    ("fn", pa.int64()),
    ("gt_area", pa.int64()),  # pixels
    ("pred_area", pa.int64()),  # pixels
    ("mask_path", pa.string()),  # relative to the results folder; null unless --save-masks
    ("mask_rle", pa.string()),  # slice rows: the scored mask, COCO RLE as JSON (samia.io.mask_runs)
    # volume rows (null / empty for slice rows)
    ("key_slice", pa.int64()),  # the slice the prompt is given on (box3d: z_mid; slice_boxes: the largest)
    ("slices_encoded", pa.int64()),  # encoder calls of the strategy's run on the volume (its batch of objects)
    ("slices_decoded", pa.int64()),  # this object's decoded slices
    ("slice_offset", _LIST_OF_FLOATS),  # slice index - key_slice, for each slice holding truth or prediction
    ("slice_dice", _LIST_OF_FLOATS),  # the Dice of those slices
)

SLICE_ROW_DEFAULTS: dict[str, Any] = {
    "level": "slice",
    "spacing_z": float("nan"),
    "key_slice": None,
    "slices_encoded": None,
    "slices_decoded": None,
    "slice_offset": [],
    "slice_dice": [],
}
"""The volume columns of a slice-level row."""

RESULT_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in RESULT_FIELDS])
RESULT_COLUMNS: tuple[str, ...] = tuple(RESULT_SCHEMA.names)

LATER_COLUMNS: tuple[str, ...] = ("mask_rle",)
"""Columns added since samia 0.1: a journal unit or results file written before lacks them, and
reads them as null (:func:`conform`)."""

CORE_COLUMNS: tuple[str, ...] = (
    "case",
    "slice",
    "object",
    "label",
    "component",
    "model",
    "weights_sha256",
    "strategy",
    "variant",
    "selection",
    "dice",
)
"""The columns every reader needs; results of older samia versions may lack some others (factors,
protocol, input pipeline), which the report then leaves out with a note."""

ROW_ORDER = ["case", "level", "slice", "label", "component", "strategy", "variant", "n_clicks", "selection"]
"""How ``results.parquet`` is sorted."""


def metric_columns(metrics: dict[str, float]) -> dict[str, float | int]:
    """``segmentation_metrics``' values as the schema types them: ratios and distances float64,
    voxel counts int64."""
    return {k: (float(v) if k in ("dice", "iou", "hd95", "assd", "nsd") else int(v)) for k, v in metrics.items()}


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Result rows as a table of :data:`RESULT_SCHEMA` (an empty table for no rows).

    Raises:
        ValueError: a row's keys are not exactly the schema's columns (a programming error).
    """
    expected = set(RESULT_COLUMNS)
    for row in rows:
        if set(row) != expected:
            missing, extra = sorted(expected - set(row)), sorted(set(row) - expected)
            raise ValueError(f"result row does not match the schema: missing {missing}, unexpected {extra}")
    return pa.Table.from_pylist(list(rows), schema=RESULT_SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """``table`` (a journal unit or results file, schema metadata dropped) as :data:`RESULT_SCHEMA`:
    the :data:`LATER_COLUMNS` an older samia did not write added as nulls.

    Raises:
        pyarrow.ArrowInvalid: ``table`` lacks another column or holds one of the wrong type.
    """
    for name in LATER_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(
                RESULT_SCHEMA.field(name), pa.nulls(table.num_rows, RESULT_SCHEMA.field(name).type)
            )
    return table.select(list(RESULT_COLUMNS)).cast(RESULT_SCHEMA)


def missing_columns(columns: Sequence[str], required: Sequence[str] = RESULT_COLUMNS) -> list[str]:
    """The ``required`` columns (default: all of the schema's) absent from ``columns``."""
    present = set(columns)
    return [name for name in required if name not in present]
