"""The report's tables, computed from result rows (raw numbers; formatting is ``samia.analysis.formatting``).

- :func:`summary_table`: per group, ``summary.csv``'s statistics (``samia.evaluation.summarize``) plus
  the cases behind them and the 95 % case-level bootstrap interval of the mean Dice.
- :func:`target_table`: the best and worst objects (targets) of every model x strategy x selection.
- :func:`compare`: paired comparisons of arms (strategies, selection rules, models) on the same
  objects or prompts, averaged per case (the unit: ``n`` counts cases), p-values withheld below
  :data:`~samia.analysis.stats.MIN_CASES_FOR_P` cases, Holm-adjusted over the table; :func:`strategy_comparisons`,
  :func:`selection_comparisons`, :func:`model_comparisons` are its three uses.
- :func:`factor_correlations`: Spearman and partial Spearman correlation of Dice with each factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from itertools import combinations

import numpy as np
import pandas as pd

from samia.analysis.results import (
    OBJECT_KEY,
    PROTOCOL_ORDER,
    case_labels,
    model_order,
    object_scores,
    ordered,
    prompt_key,
    protocol_sort,
)
from samia.analysis.stats import (
    MIN_CASES_FOR_P,
    N_RESAMPLES,
    PairedTest,
    bootstrap_ci,
    correlation,
    holm,
    paired_test,
)
from samia.evaluation.summary import summarize
from samia.metrics import click_auc
from samia.metrics.factors import FACTOR_NAMES, SIZE_CONTROL, SIZE_FACTORS
from samia.selection import SELECTIONS

ARM_KEYS = ["model_id", "strategy", "selection"]
"""What produced a row: the model (with its weights), the prompt strategy, the mask selection rule."""

SUMMARY_LEVELS: dict[str, list[str]] = {
    "headline": ARM_KEYS,
    "by_modality": ["modality", *ARM_KEYS],
    "by_object": ["dataset", "modality", "object", *ARM_KEYS],
}
"""The grouping of each summary table (name -> keys)."""


def summary_table(
    results: pd.DataFrame, keys: Sequence[str], rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> pd.DataFrame:
    """:func:`samia.evaluation.summarize` over ``keys`` plus ``n_cases`` and ``dice_ci_low`` / ``dice_ci_high``.

    ``n`` counts rows (objects x prompts); ``n_cases`` the cases they come from, the unit of the
    interval: the BCa bootstrap 95 % interval of the mean Dice resampling whole cases (NaN rows
    excluded, as from the mean; NaN below two cases). Rows are sorted in protocol order.
    """
    keys = list(keys)
    summary = summarize(results, keys)
    grouped = results.assign(_case=case_labels(results)).groupby(keys, sort=True, dropna=False)
    summary["n_cases"] = grouped["_case"].nunique().to_numpy()
    intervals = grouped[["dice", "_case"]].apply(
        lambda group: bootstrap_ci(group["dice"].to_numpy(), rng, n_resamples=n_resamples, cases=group["_case"])
    )
    summary[["dice_ci_low", "dice_ci_high"]] = pd.DataFrame(intervals.tolist(), index=summary.index)
    return protocol_sort(summary, keys)


def target_table(by_object: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The ``k`` best and ``k`` worst objects (by mean Dice) of every model x strategy x selection.

    Args:
        by_object: the ``by_object`` :func:`summary_table`.

    Returns:
        The rows of ``by_object`` that are among them, with a column ``rank`` (``best 1`` = highest
        mean Dice, ``worst 1`` = lowest); objects whose Dice is all NaN are not ranked.
    """
    picked = []
    for _, group in by_object.dropna(subset=["dice_mean"]).groupby(ARM_KEYS, sort=False):
        ranked = group.sort_values(["dice_mean", "dataset", "object"], ascending=[False, True, True], kind="stable")
        picked.append(ranked.head(k).assign(rank=[f"best {i + 1}" for i in range(min(k, len(ranked)))]))
        worst = ranked.iloc[::-1].head(k)
        picked.append(worst.assign(rank=[f"worst {i + 1}" for i in range(len(worst))]))
    if not picked:
        return pd.DataFrame(columns=["rank", *by_object.columns])
    table = pd.concat(picked, ignore_index=True)
    return table[["rank", *by_object.columns]]


def compare(
    frame: pd.DataFrame,
    arm: str,
    within: Sequence[str],
    key: Sequence[str],
    rng: np.random.Generator,
    order: Sequence[str] = (),
    n_resamples: int = N_RESAMPLES,
) -> pd.DataFrame:
    """Paired Dice comparisons between the values of ``arm`` on the same ``key``, in every ``within`` group.

    Within each group every pair of arms ``(a, b)`` (``a`` before ``b`` in ``order``, unknown arms
    alphabetically after) is compared on the keys both have a Dice for, averaged within each case
    (``key`` starts with ``dataset``, ``case``): :func:`samia.analysis.stats.paired_test` over cases,
    so ``n`` counts cases and ``n_pairs`` the keys; several rows with one key and arm are averaged
    first. Pairs without a common key are left out. ``p_holm`` is Holm's adjustment over the whole
    table (one family) of the p-values not withheld.

    Returns:
        Columns ``within``, ``a``, ``b`` and the fields of :class:`~samia.analysis.stats.PairedTest`,
        then ``p_holm``.
    """
    within, key = list(within), list(key)
    rows = []
    for group_values, group in frame.groupby(within, sort=False, dropna=False):
        table = group.groupby(key + [arm], dropna=False)["dice"].mean().unstack(arm)
        cases = case_labels(table.index.to_frame(index=False))
        for a, b in combinations(ordered(table.columns, order), 2):
            test = paired_test(table[a].to_numpy(), table[b].to_numpy(), rng, n_resamples, cases=cases)
            if test.n:
                rows.append({**dict(zip(within, group_values)), "a": a, "b": b, **test.to_record()})
    comparisons = pd.DataFrame(rows, columns=[*within, "a", "b", *(f.name for f in fields(PairedTest))])
    comparisons["p_holm"] = holm(comparisons["p_value"].to_numpy(dtype=np.float64))
    return comparisons


def strategy_comparisons(
    results: pd.DataFrame, rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> pd.DataFrame:
    """Strategies against each other per model and selection rule, on the same objects.

    The unit is the object (:func:`samia.analysis.results.object_scores`: variants averaged, click
    sequences at their last click), since strategies have different numbers of prompt variants.
    """
    return compare(
        object_scores(results), "strategy", ["model_id", "selection"], OBJECT_KEY, rng, PROTOCOL_ORDER, n_resamples
    )


def selection_comparisons(
    results: pd.DataFrame, rng: np.random.Generator, n_resamples: int = N_RESAMPLES
) -> pd.DataFrame:
    """Selection rules against each other per model and strategy, on the same prompts."""
    return compare(results, "selection", ["model_id", "strategy"], prompt_key(results), rng, SELECTIONS, n_resamples)


def model_comparisons(results: pd.DataFrame, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """Models (weights) against each other per strategy and selection rule, on the same prompts.

    ``a`` is the model met first in ``results`` (e.g. the zero-shot run given before the fine-tuned one).
    """
    return compare(
        results, "model_id", ["strategy", "selection"], prompt_key(results), rng, model_order(results), n_resamples
    )


def selection_gaps(results: pd.DataFrame, first: str = "oracle", second: str = "predicted_iou") -> pd.DataFrame:
    """``Dice(first) - Dice(second)`` for every prompt decoded under both selection rules.

    Returns:
        Columns ``model_id``, ``strategy`` and ``gap``, one row per prompt, models in
        :func:`~samia.analysis.results.model_order` (empty when either rule is missing).
    """
    chosen = results[results["selection"].isin([first, second])]
    keys = ["model_id", "strategy", *prompt_key(results)]
    table = chosen.groupby(keys + ["selection"], dropna=False)["dice"].mean().unstack("selection")
    if first not in table.columns or second not in table.columns:
        return pd.DataFrame(columns=["model_id", "strategy", "gap"])
    gaps = (table[first] - table[second]).dropna().rename("gap").reset_index()
    rank = {model: i for i, model in enumerate(model_order(results))}
    gaps = gaps.sort_values("model_id", key=lambda models: models.map(rank), kind="stable")
    return gaps[["model_id", "strategy", "gap"]].reset_index(drop=True)


def available_factors(results: pd.DataFrame) -> list[str]:
    """The factor columns (:data:`~samia.metrics.factors.FACTOR_NAMES`) with at least one value."""
    return [f for f in FACTOR_NAMES if f in results.columns and results[f].notna().any()]


def partial_controls(factor: str, factors: Sequence[str]) -> list[str]:
    """The factors a partial correlation of ``factor`` controls for: all other factors, except that
    size is represented by :data:`~samia.metrics.factors.SIZE_CONTROL` alone and a size factor is
    not controlled for size."""
    controls = [f for f in factors if f != factor and f not in SIZE_FACTORS]
    if factor not in SIZE_FACTORS and SIZE_CONTROL in factors:
        controls.append(SIZE_CONTROL)
    return controls


def factor_correlations(results: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    """Spearman and partial Spearman correlation of Dice with each factor, per model x strategy x selection.

    The unit is the object (:func:`~samia.analysis.results.object_scores`); the partial correlation
    controls for :func:`partial_controls`. p-values are two-sided and not adjusted, and withheld
    (NaN, ``p_withheld``) when the objects come from fewer than
    :data:`~samia.analysis.stats.MIN_CASES_FOR_P` cases.

    Returns:
        Columns ``model_id``, ``strategy``, ``selection``, ``factor``, ``n`` (objects), ``n_cases``,
        ``rho``, ``p_value``, ``partial_rho``, ``partial_p_value``, ``p_withheld``, ``controls``
        (comma-separated).
    """
    scores = object_scores(results, extra=list(factors))
    rows = []
    for arm, group in scores.groupby(ARM_KEYS, sort=False):
        for factor in factors:
            controls = partial_controls(factor, factors)
            result = correlation(group[factor].to_numpy(), group["dice"].to_numpy(), group[controls].to_numpy())
            used = group[factor].notna() & group["dice"].notna() & group[controls].notna().all(axis=1)
            n_cases = len(set(case_labels(group[used])))
            record = {**dict(zip(ARM_KEYS, arm)), "factor": factor, **result.to_record(), "n_cases": n_cases}
            withheld = n_cases < MIN_CASES_FOR_P
            if withheld:
                record.update(p_value=float("nan"), partial_p_value=float("nan"))
            rows.append({**record, "p_withheld": withheld, "controls": ", ".join(controls)})
    return protocol_sort(pd.DataFrame(rows), ARM_KEYS) if rows else pd.DataFrame()


def volume_cost_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model, strategy and selection rule of volume rows: volumes, mean encoder calls per volume,
    mean decoded slices per object (click sequences: their last click's run)."""
    per_volume = rows.groupby([*ARM_KEYS, "dataset", "case"], sort=False).agg(
        encoded=("slices_encoded", "max"), decoded=("slices_decoded", "mean")
    )
    table = per_volume.groupby(ARM_KEYS, sort=False).agg(
        volumes=("encoded", "size"),
        encoder_calls_per_volume=("encoded", "mean"),
        decoded_per_object=("decoded", "mean"),
    )
    return protocol_sort(table.reset_index().round(2), ARM_KEYS)


def slice_dice_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per slice of every volume row: ``model_id``, ``strategy``, ``offset`` (slices from the
    key slice) and that slice's ``dice``."""
    exploded = rows[["model_id", "strategy", "slice_offset", "slice_dice"]].explode(["slice_offset", "slice_dice"])
    exploded = exploded.dropna(subset=["slice_offset"])
    return pd.DataFrame(
        {
            "model_id": exploded["model_id"],
            "strategy": exploded["strategy"],
            "offset": exploded["slice_offset"].astype(float).astype(int),
            "dice": exploded["slice_dice"].astype(float),
        }
    )


def click_auc_table(clicks: pd.DataFrame) -> pd.DataFrame:
    """Per model and selection rule of ``box3d_clicks`` rows: objects, mean Dice AUC and NSD AUC over
    clicks 1..N (:func:`samia.metrics.click_auc`), mean final Dice."""
    keys = ["dataset", "case", "label", "model_id", "selection"]
    trajectories = clicks[clicks["n_clicks"] >= 1].sort_values("n_clicks").groupby(keys, sort=False)
    per_object = trajectories.agg(
        dice_auc=("dice", lambda v: click_auc(v.to_numpy())),
        nsd_auc=("nsd", lambda v: click_auc(v.to_numpy())),
        final_dice=("dice", "last"),
    )
    table = per_object.groupby(["model_id", "selection"], sort=False).agg(
        objects=("dice_auc", "size"),
        dice_auc=("dice_auc", "mean"),
        nsd_auc=("nsd_auc", "mean"),
        final_dice=("final_dice", "mean"),
    )
    return table.reset_index()
