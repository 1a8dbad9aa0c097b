"""Per-group statistics of result rows (``summary.csv``) and the headline table."""

from __future__ import annotations

import pandas as pd

from samia.types import distance_unit

SUMMARY_KEYS = ["dataset", "model", "modality", "level", "object", "strategy", "jitter_band", "n_clicks", "selection"]
HEADLINE_KEYS = ["model", "strategy", "selection"]
SUMMARY_METRICS = ("dice", "iou", "hd95", "assd", "nsd")


def summarize(results: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """One row per group: ``n`` and, per metric, mean, std, median and the count of NaN values.

    NaN metric values (empty ground truth and prediction, see ``samia.metrics``) are excluded from
    the statistics and counted in ``<metric>_n_nan``, never silently dropped.
    """
    keys = [k for k in (SUMMARY_KEYS if keys is None else keys) if k in results.columns or results.empty]
    if results.empty:
        return pd.DataFrame(columns=keys + ["n"])
    grouped = results.groupby(keys, sort=True, dropna=False)
    summary = grouped.size().rename("n").to_frame()
    for metric in SUMMARY_METRICS:
        column = grouped[metric]
        summary[f"{metric}_mean"] = column.mean()
        summary[f"{metric}_std"] = column.std()
        summary[f"{metric}_median"] = column.median()
        summary[f"{metric}_n_nan"] = column.apply(lambda values: int(values.isna().sum()))
    return summary.reset_index()


CLICK_STRATEGIES = ("clicks", "box3d_clicks", "box3d_clicks_memory")
"""Strategies whose rows form a trajectory over ``n_clicks``."""


def _last_clicks(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with click trajectories at their last click count only, as strategy ``<name>@N``."""
    if "n_clicks" not in results:
        return results
    frame = results
    for strategy in CLICK_STRATEGIES:
        rows = frame["strategy"] == strategy
        if not rows.any():
            continue
        last = frame.loc[rows, "n_clicks"].max()
        frame = frame[~rows | (frame["n_clicks"] == last)].copy()
        frame.loc[frame["strategy"] == strategy, "strategy"] = f"{strategy}@{last}"
    return frame


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """Mean / median Dice and NSD per model, strategy and selection rule, for the terminal.

    Click trajectories appear at their last click count (strategy ``clicks@N``); jitter bands are
    pooled per strategy. HD95 is in mm.
    """
    if results.empty:
        return pd.DataFrame()
    columns = ["n", "dice_mean", "dice_median", "nsd_mean", "hd95_median"]
    return summarize(_last_clicks(results), HEADLINE_KEYS)[HEADLINE_KEYS + columns]


def object_means(results: pd.DataFrame, selection: str) -> pd.DataFrame:
    """Mean Dice per object class (row, by ``object`` name) and strategy (column) under ``selection``,
    strategies in the order they first appear; click trajectories at their last click."""
    frame = _last_clicks(results[results["selection"] == selection])
    table = frame.pivot_table(index="object", columns="strategy", values="dice", aggfunc="mean", sort=False)
    return table[list(pd.unique(frame["strategy"]))]


def results_distance_unit(results: pd.DataFrame) -> str:
    """The unit of the rows' distances (:func:`samia.types.distance_unit` of their ``spacing_source``;
    mm for results written before that column existed)."""
    return distance_unit(results["spacing_source"]) if "spacing_source" in results else "mm"


HEADLINE_WIDTH = 80
MAX_OBJECT_ROWS = 12
_HEADLINE_NAMES = {
    "n": "n",
    "dice_mean": "Dice mean",
    "dice_median": "Dice median",
    "nsd_mean": "NSD mean",
}


def format_headline(results: pd.DataFrame, width: int = HEADLINE_WIDTH) -> str:
    """The terminal summary of a run as plain text, no line longer than ``width`` (when names allow).

    First the pooled table (:func:`headline`; the model goes into the title when there is one), then
    the mean Dice per object class and strategy under one selection rule (``predicted_iou`` when
    present: what a user gets), so that classes that differ (bone 0.11, soft tissue 0.87) are not
    hidden by their pooled mean (0.49). With more than :data:`MAX_OBJECT_ROWS` classes, the lowest
    and highest by mean over strategies are shown. Columns that do not fit wrap into blocks.
    """
    if results.empty:
        return "no result rows"
    unit = results_distance_unit(results)
    table = headline(results).rename(columns={**_HEADLINE_NAMES, "hd95_median": f"HD95 {unit}"})
    models = list(pd.unique(table["model"]))
    datasets = list(pd.unique(results["dataset"]))
    title = (f"{models[0]} " if len(models) == 1 else "") + (f"on {datasets[0]}: " if len(datasets) == 1 else "")
    if len(models) == 1:
        table = table.drop(columns="model")
    keys = [c for c in table.columns if c in HEADLINE_KEYS]
    lines = [
        f"{title}{len(results)} rows (Dice, NSD in 0..1; HD95: the median, in {unit})",
        text_table(table, width, len(keys)),
    ]
    selections = list(pd.unique(results["selection"]))
    chosen = "predicted_iou" if "predicted_iou" in selections else selections[0]
    for model in models:
        per_object = object_means(results[results["model"] == model], chosen)
        if len(per_object) < 2:
            continue
        shown, note = per_object, ""
        if len(per_object) > MAX_OBJECT_ROWS:
            order = per_object.mean(axis=1).sort_values(kind="stable").index
            half = MAX_OBJECT_ROWS // 2
            shown = per_object.loc[list(order[:half]) + list(order[-half:])]
            note = f", the {half} lowest and {half} highest of {len(per_object)} (all in summary.csv)"
        prefix = f"{model}, " if len(models) > 1 else ""
        lines += ["", f"Dice mean per object class ({prefix}selection {chosen}{note})"]
        lines.append(text_table(shown.rename_axis(None, axis=1).rename_axis("object").reset_index(), width, 1))
    return "\n".join(lines)


def text_table(frame: pd.DataFrame, width: int = HEADLINE_WIDTH, keys: int = 1) -> str:
    """``frame`` as a text table: names left-aligned, numbers right-aligned (floats to 3 decimals);
    when the columns do not fit in ``width`` characters they wrap into blocks, each repeating the
    first ``keys`` (naming) columns."""
    cells = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind == "f":
            text = ["-" if pd.isna(v) else f"{v:.3f}" for v in values]
        else:
            text = [str(v) for v in values]
        size = max(len(str(column)), *(len(t) for t in text))
        align = str.rjust if values.dtype.kind in "iuf" else str.ljust
        cells[column] = [align(str(column), size)] + [align(t, size) for t in text]
    names, rest = list(frame.columns[:keys]), list(frame.columns[keys:])
    used = sum(len(cells[c][0]) + 2 for c in names)
    blocks: list[list[str]] = [[]]
    for column in rest:
        if blocks[-1] and used + sum(len(cells[c][0]) + 2 for c in blocks[-1] + [column]) > width:
            blocks.append([])
        blocks[-1].append(column)
    rendered = []
    for block in blocks:
        columns = names + block
        rendered.append("\n".join("  ".join(cells[c][i] for c in columns).rstrip() for i in range(len(frame) + 1)))
    return "\n\n".join(rendered)


def everything_instances(results: pd.DataFrame) -> pd.DataFrame:
    """Instance-level detection by everything mode per dataset and model (no oracle).

    Objects count as found when one-to-one (Hungarian) matching pairs them with a generated mask at
    IoU >= the run's ``instance_iou``: TP = found objects, FN = the other objects, FP = generated
    masks matched to no object, summed over units; precision, recall and F1 = 2TP / (2TP + FP + FN).
    """
    columns = ["dataset", "model", "n_objects", "n_generated", "tp", "fp", "fn", "precision", "recall", "f1"]
    if results.empty or not (results["strategy"] == "everything").any():
        return pd.DataFrame(columns=columns)
    rows = results[results["strategy"] == "everything"]
    records = []
    for (dataset, model), group in rows.groupby(["dataset", "model"], sort=True):
        per_unit = group.groupby(["case", "slice"]).agg(
            generated=("n_generated_masks", "first"), found=("instance_matched", "sum"), objects=("label", "size")
        )
        tp = int(per_unit["found"].sum())
        fp = int((per_unit["generated"] - per_unit["found"]).sum())
        fn = int((per_unit["objects"] - per_unit["found"]).sum())
        records.append(
            {
                "dataset": dataset,
                "model": model,
                "n_objects": int(per_unit["objects"].sum()),
                "n_generated": int(per_unit["generated"].sum()),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": tp / (tp + fp) if tp + fp else float("nan"),
                "recall": tp / (tp + fn) if tp + fn else float("nan"),
                "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns)
