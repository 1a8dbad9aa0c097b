"""Per-group statistics of result rows (``summary.csv``) and the headline table."""

from __future__ import annotations

import pandas as pd

SUMMARY_KEYS = ["dataset", "model", "modality", "object", "strategy", "jitter_band", "n_clicks", "selection"]
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


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """Mean / median Dice and NSD per model, strategy and selection rule, for the terminal.

    Click trajectories appear at their last click count (strategy ``clicks@N``); jitter bands are
    pooled per strategy.
    """
    if results.empty:
        return pd.DataFrame()
    frame = results
    if "n_clicks" in frame and (frame["strategy"] == "clicks").any():
        last = frame.loc[frame["strategy"] == "clicks", "n_clicks"].max()
        frame = frame[(frame["strategy"] != "clicks") | (frame["n_clicks"] == last)].copy()
        frame.loc[frame["strategy"] == "clicks", "strategy"] = f"clicks@{last}"
    columns = ["n", "dice_mean", "dice_median", "nsd_mean", "hd95_median"]
    return summarize(frame, HEADLINE_KEYS)[HEADLINE_KEYS + columns]


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
