"""Human-readable versions of the report's tables (strings), for HTML and Markdown.

The CSV files keep the raw numbers; these views round them, join a mean with its spread and an
interval's ends, and write p-values in scientific notation below 0.001. Missing values show as ``–``.
Every estimate stands beside the number of cases behind it; a p-value withheld for too few cases
says so (:data:`~samia.analysis.stats.MIN_CASES_FOR_P`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from samia.analysis.stats import MIN_CASES_FOR_P

MISSING = "–"


def number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals; NaN as :data:`MISSING`."""
    return MISSING if value is None or math.isnan(value) else f"{value:.{digits}f}"


def p_value(value: float) -> str:
    """``0.042``, ``3.1e-07``; NaN as :data:`MISSING`."""
    if value is None or math.isnan(value):
        return MISSING
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def p_values(frame: pd.DataFrame, column: str = "p_value") -> list[str]:
    """``frame[column]`` as :func:`p_value`, or ``withheld (n < 10 cases)`` where ``p_withheld``."""
    withheld = frame["p_withheld"] if "p_withheld" in frame else pd.Series(False, index=frame.index)
    return [
        f"withheld (n < {MIN_CASES_FOR_P} cases)" if hidden else p_value(value)
        for value, hidden in zip(frame[column], withheld)
    ]


def interval(low: float, high: float, digits: int = 3) -> str:
    """``[low, high]``."""
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _keys(frame: pd.DataFrame, keys: Sequence[str]) -> dict[str, pd.Series]:
    return {("model" if k == "model_id" else k): frame[k].astype(str) for k in keys}


def summary_view(summary: pd.DataFrame, keys: Sequence[str], unit: str = "mm") -> pd.DataFrame:
    """A :func:`samia.analysis.tables.summary_table` with Dice as mean ± std, median and 95 % CI;
    HD95 in ``unit`` (:func:`samia.types.distance_unit` of the rows summarised)."""
    return pd.DataFrame(
        {
            **_keys(summary, keys),
            "cases": summary["n_cases"].astype(int).astype(str),
            "rows": summary["n"].astype(int).astype(str),
            "Dice mean ± std": [
                f"{number(m)} ± {number(s)}" for m, s in zip(summary["dice_mean"], summary["dice_std"])
            ],
            "Dice median": summary["dice_median"].map(number),
            "Dice 95% CI": [interval(lo, hi) for lo, hi in zip(summary["dice_ci_low"], summary["dice_ci_high"])],
            "NSD mean": summary["nsd_mean"].map(number),
            f"HD95 median ({unit})": summary["hd95_median"].map(lambda v: number(v, 2)),
            "Dice NaN": summary["dice_n_nan"].astype(int).astype(str),
        }
    )


def target_view(targets: pd.DataFrame) -> pd.DataFrame:
    """A :func:`samia.analysis.tables.target_table` with Dice as mean ± std and median."""
    return pd.DataFrame(
        {
            **_keys(targets, ["model_id", "strategy", "selection", "rank", "dataset", "object"]),
            "cases": targets["n_cases"].astype(int).astype(str),
            "rows": targets["n"].astype(int).astype(str),
            "Dice mean ± std": [
                f"{number(m)} ± {number(s)}" for m, s in zip(targets["dice_mean"], targets["dice_std"])
            ],
            "Dice median": targets["dice_median"].map(number),
        }
    )


def comparison_view(comparisons: pd.DataFrame, within: Sequence[str]) -> pd.DataFrame:
    """A :func:`samia.analysis.tables.compare` table: means, difference with its CI, tests, effect size."""
    return pd.DataFrame(
        {
            **_keys(comparisons, within),
            "A": comparisons["a"].astype(str),
            "B": comparisons["b"].astype(str),
            "cases": comparisons["n"].astype(int).astype(str),
            "pairs": comparisons["n_pairs"].astype(int).astype(str),
            "Dice A": comparisons["mean_a"].map(number),
            "Dice B": comparisons["mean_b"].map(number),
            "A − B mean [95% CI]": [
                f"{number(d)} {interval(lo, hi)}"
                for d, lo, hi in zip(comparisons["mean_difference"], comparisons["ci_low"], comparisons["ci_high"])
            ],
            "A − B median": comparisons["median_difference"].map(number),
            "Wilcoxon p": p_values(comparisons),
            "Holm p": p_values(comparisons, "p_holm"),
            "rank-biserial r": comparisons["rank_biserial"].map(number),
        }
    )


def correlation_view(correlations: pd.DataFrame) -> pd.DataFrame:
    """A :func:`samia.analysis.tables.factor_correlations` table."""
    return pd.DataFrame(
        {
            **_keys(correlations, ["model_id", "strategy", "selection", "factor"]),
            "cases": correlations["n_cases"].astype(int).astype(str),
            "objects": correlations["n"].astype(int).astype(str),
            "Spearman ρ": correlations["rho"].map(number),
            "p": p_values(correlations),
            "partial ρ": correlations["partial_rho"].map(number),
            "partial p": p_values(correlations, "partial_p_value"),
        }
    )


def markdown_table(view: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a string frame (``|`` in cells escaped)."""

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(view.columns), "|" + "|".join("---" for _ in view.columns) + "|"]
    lines += [row(values) for values in view.itertuples(index=False)]
    return "\n".join(lines) + "\n"
