"""Per-group statistics of result rows (``summary.csv``) and the headline table."""

from __future__ import annotations

import pandas as pd

SUMMARY_KEYS = ["dataset", "model", "modality", "object", "strategy", "selection"]
HEADLINE_KEYS = ["model", "strategy", "selection"]
SUMMARY_METRICS = ("dice", "iou", "hd95", "assd", "nsd")


def summarize(results: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """One row per group: ``n`` and, per metric, mean, std, median and the count of NaN values.

    NaN metric values (empty ground truth and prediction, see ``samia.metrics``) are excluded from
    the statistics and counted in ``<metric>_n_nan``, never silently dropped.
    """
    keys = SUMMARY_KEYS if keys is None else keys
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
    """Mean / median Dice and NSD per model, strategy and selection rule, for the terminal."""
    columns = ["n", "dice_mean", "dice_median", "nsd_mean", "hd95_median"]
    return summarize(results, HEADLINE_KEYS)[HEADLINE_KEYS + columns] if not results.empty else pd.DataFrame()
