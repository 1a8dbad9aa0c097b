"""A study's tables and plot: held-out Dice against the number of training cases, per method.

``runs.csv``: one row per run (and the zero-shot model, ``n_cases`` 0), strategy and selection rule:
the run's mean test Dice and NSD over the test objects, its best epoch, training seconds, peak RSS
and trainable parameters. ``curve.csv``: per method, ``n_cases``, strategy and selection rule, the
mean over repeats of the runs' mean test Dice, its standard deviation and the 95% t-interval of the
mean over repeats (NaN with one repeat), and the runs' mean training seconds and largest peak RSS.
``learning_curve.png``: one panel per strategy at one selection rule.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from samia.evaluation.summary import headline
from samia.files import atomic_write_bytes
from samia.study.plan import RUNS_FOLDER, ZERO_SHOT_FOLDER

ZERO_SHOT = "zero-shot"
"""The ``method`` of the base model's rows (``n_cases`` 0)."""

PLOT_SELECTION = "single"
"""Selection rule of the plot by default: the model's one answer, no ground truth involved."""

RUN_COLUMNS = [
    "method",
    "n_cases",
    "repeat",
    "run",
    "strategy",
    "selection",
    "n",
    "dice_mean",
    "dice_median",
    "nsd_mean",
    "best_epoch",
    "best_val_dice",
    "epochs",
    "train_seconds",
    "run_seconds",
    "peak_rss_mb",
    "trainable_parameters",
    "trainable_share",
]
CURVE_KEYS = ["method", "n_cases", "strategy", "selection"]


SCORE_COLUMNS = ["strategy", "selection", "n", "dice_mean", "dice_median", "nsd_mean"]
"""Per strategy and selection rule, a model's scores on the test cases (``samia evaluate``'s headline)."""


def test_scores(results: pd.DataFrame) -> list[dict[str, Any]]:
    """:data:`SCORE_COLUMNS` records of a model's test results (click sequences at their last click)."""
    return headline(results)[SCORE_COLUMNS].to_dict("records")


def zero_shot_scores(study: Path) -> list[dict[str, Any]]:
    """:func:`test_scores` of the base model (``study/zero_shot``; none before it ran)."""
    path = study / ZERO_SHOT_FOLDER / "results.parquet"
    return test_scores(pd.read_parquet(path)) if path.is_file() else []


def run_records(study: Path) -> list[dict[str, Any]]:
    """Every finished run's ``run.yaml`` under ``study/runs`` (sorted by run name)."""
    paths = sorted((study / RUNS_FOLDER).glob("*/*/run.yaml"))
    return [yaml.safe_load(path.read_text()) for path in paths if not path.name.startswith(".")]


def error_table(study: Path) -> pd.DataFrame:
    """``run, error, message`` of every run whose last attempt failed."""
    rows = []
    for path in sorted((study / RUNS_FOLDER).glob("*/*/error.json")):
        record = json.loads(path.read_text())
        rows.append({"run": path.parent.relative_to(study / RUNS_FOLDER).as_posix(), **record})
    return pd.DataFrame(rows, columns=["run", "error", "message"])


def runs_table(records: list[dict[str, Any]], zero_shot: list[dict[str, Any]]) -> pd.DataFrame:
    """:data:`RUN_COLUMNS` rows: ``zero_shot`` (test score records of the base model) first, then
    each run record's test scores with its training facts."""
    rows = [{"method": ZERO_SHOT, "n_cases": 0, "repeat": 0, "run": ZERO_SHOT, **score} for score in zero_shot]
    for record in records:
        facts = {k: v for k, v in record.items() if k in RUN_COLUMNS}
        rows += [{**facts, **score} for score in record["test"]]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _interval(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean of ``values`` (NaN for fewer than 2)."""
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def curve_table(runs: pd.DataFrame, method_order: list[str]) -> pd.DataFrame:
    """Per :data:`CURVE_KEYS`: ``repeats``, ``dice_mean`` (over repeats), ``dice_std``,
    ``dice_ci_low``/``dice_ci_high`` (95% t-interval), ``nsd_mean``, ``train_seconds_mean``,
    ``peak_rss_mb_max``, ``trainable_parameters``; methods in ``method_order`` (zero-shot first)."""
    rows = []
    for key, group in runs.groupby(CURVE_KEYS, sort=False):
        dice = group["dice_mean"].to_numpy(float)
        low, high = _interval(dice)
        rows.append(
            {
                **dict(zip(CURVE_KEYS, key)),
                "repeats": len(group),
                "dice_mean": float(dice.mean()),
                "dice_std": float(dice.std(ddof=1)) if len(dice) > 1 else float("nan"),
                "dice_ci_low": low,
                "dice_ci_high": high,
                "nsd_mean": float(group["nsd_mean"].mean()),
                "train_seconds_mean": float(group["train_seconds"].mean()),
                "peak_rss_mb_max": float(group["peak_rss_mb"].max()),
                "trainable_parameters": group["trainable_parameters"].max(),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    rank = {name: i for i, name in enumerate([ZERO_SHOT, *method_order])}
    return table.sort_values(
        ["strategy", "selection", "method", "n_cases"], key=lambda c: c.map(rank) if c.name == "method" else c
    ).reset_index(drop=True)


def learning_curve_png(curve: pd.DataFrame, runs: pd.DataFrame, selection: str, method_order: list[str]) -> bytes:
    """The plot: per strategy, test Dice (``selection``) against training cases, one line per
    method (mean over repeats, shaded 95% interval, each run a dot), zero-shot as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    chosen = curve[curve["selection"] == selection]
    strategies = list(dict.fromkeys(chosen["strategy"]))
    figure = Figure(figsize=(4.2 * max(1, len(strategies)), 3.8), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, max(1, len(strategies)), squeeze=False)[0])
    colours = matplotlib.colormaps["tab10"]
    for axes, strategy in zip(panels, strategies):
        rows = chosen[chosen["strategy"] == strategy]
        base = rows[rows["method"] == ZERO_SHOT]
        if len(base):
            axes.axhline(float(base["dice_mean"].iloc[0]), color="black", linestyle="--", label=ZERO_SHOT)
        for index, method in enumerate(m for m in method_order if m in set(rows["method"])):
            line = rows[rows["method"] == method].sort_values("n_cases")
            colour = colours(index % 10)
            axes.plot(line["n_cases"], line["dice_mean"], marker="o", color=colour, label=method)
            axes.fill_between(line["n_cases"], line["dice_ci_low"], line["dice_ci_high"], color=colour, alpha=0.15)
            dots = runs[(runs["method"] == method) & (runs["strategy"] == strategy) & (runs["selection"] == selection)]
            axes.scatter(dots["n_cases"], dots["dice_mean"], s=10, color=colour, alpha=0.6)
        ticks = sorted(set(rows.loc[rows["method"] != ZERO_SHOT, "n_cases"]))
        axes.set_xscale("log", base=2)
        axes.set_xticks(ticks, [str(t) for t in ticks])
        axes.set(xlabel="training cases", ylabel=f"test Dice ({selection})", title=strategy, ylim=(0, 1))
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8, loc="lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def write_curves(
    study: Path, method_order: list[str], selection: str = PLOT_SELECTION
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Write ``runs.csv``, ``curve.csv``, ``errors.csv`` and ``learning_curve.png`` (atomically)
    into ``study``; returns ``(runs, curve, errors)``."""
    runs = runs_table(run_records(study), zero_shot_scores(study))
    curve = curve_table(runs, method_order)
    errors = error_table(study)
    for name, frame in (("runs.csv", runs), ("curve.csv", curve), ("errors.csv", errors)):
        atomic_write_bytes(study / name, frame.to_csv(index=False).encode())
    if not curve.empty:
        atomic_write_bytes(study / "learning_curve.png", learning_curve_png(curve, runs, selection, method_order))
    return runs, curve, errors
