"""A study's tables and plot: a held-out score against the number of training cases, per method.

One-truth data (:data:`DICE`): each run's mean test Dice and NSD over the test objects, per
prompting strategy and selection rule. Multi-rater data (:data:`GED`): each run's mean test
Generalised Energy Distance and Hungarian-matched IoU against the raters, per sampler (a
``ua_adapter`` run is scored with its latent samples, the others with the study's samplers).

``runs.csv``: one row per run (and the zero-shot model, ``n_cases`` 0) and score key: the run's
scores, its best epoch, training seconds, peak RSS and trainable parameters. ``curve.csv``: per
method, ``n_cases`` and score key, the mean over repeats of the runs' mean score, its standard
deviation and the 95% t-interval of the mean over repeats (NaN with one repeat), and the runs'
mean training seconds and largest peak RSS. ``learning_curve.png``: one panel per strategy (at one
selection rule) or per sampler.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from samia.evaluation.summary import headline
from samia.files import atomic_write_bytes
from samia.samplers import LATENT_SAMPLER
from samia.study.plan import RUNS_FOLDER, ZERO_SHOT_FOLDER

ZERO_SHOT = "zero-shot"
"""The ``method`` of the base model's rows (``n_cases`` 0)."""

PLOT_SELECTION = "single"
"""Selection rule of the plot by default: the model's one answer, no ground truth involved."""


@dataclass(frozen=True)
class Scoring:
    """How a study scores its runs on the test cases.

    Attributes:
        keys: what a run is scored per, beside its method and training cases.
        score: the headline score (``{score}_mean`` per run, its mean and interval per curve point).
        second: a second score reported beside it (``{second}_mean``).
        label: the headline score in words.
        second_label: the second score in words.
        lower_is_better: a lower headline score is better.
    """

    keys: tuple[str, ...]
    score: str
    second: str
    label: str
    second_label: str
    lower_is_better: bool

    @property
    def score_columns(self) -> list[str]:
        """A run's scores per key: the objects scored and the scores' means (and median)."""
        return [*self.keys, "n", f"{self.score}_mean", f"{self.score}_median", f"{self.second}_mean"]

    @property
    def run_columns(self) -> list[str]:
        """The columns of ``runs.csv``."""
        facts = ["best_epoch", "best_val_dice", "epochs", "train_seconds", "run_seconds", "peak_rss_mb"]
        shares = ["trainable_parameters", "trainable_share"]
        return ["method", "n_cases", "repeat", "run", *self.score_columns, *facts, *shares]

    @property
    def curve_keys(self) -> list[str]:
        return ["method", "n_cases", *self.keys]

    def at_selection(self, table: pd.DataFrame, selection: str) -> pd.DataFrame:
        """``table``'s rows (runs or curve points) under the selection rule ``selection`` where the
        scores have selection rules (:data:`DICE`), else every row."""
        return table[table["selection"] == selection] if "selection" in self.keys else table

    def summary(self, scores: list[dict[str, Any]], selection: str = PLOT_SELECTION) -> str:
        """One model's test scores (rows of :func:`test_scores` or :func:`rater_test_scores`) in one
        line: ``test Dice box 0.912, points 0.801`` (at ``selection``) or ``test GED jitter 0.093, ...``."""
        shown = self.at_selection(pd.DataFrame(scores), selection) if scores else pd.DataFrame()
        key, score = self.keys[0], f"{self.score}_mean"
        return f"{self.label} " + ", ".join(f"{row[key]} {row[score]:.3f}" for _, row in shown.iterrows())


DICE = Scoring(("strategy", "selection"), "dice", "nsd", "test Dice", "NSD", lower_is_better=False)
"""One-truth data: Dice and NSD per strategy and selection rule (``samia evaluate``'s headline)."""

GED = Scoring(("sampler",), "ged", "matched_iou", "test GED", "matched IoU", lower_is_better=True)
"""Multi-rater data: Generalised Energy Distance and matched IoU against the raters, per sampler."""

SCORE_COLUMNS = DICE.score_columns
"""Per strategy and selection rule, a model's scores on the test cases (``samia evaluate``'s headline)."""


def scoring_of(raters: tuple[str, ...] | list[str]) -> Scoring:
    """:data:`GED` for a study on multi-rater data (its split names raters), else :data:`DICE`."""
    return GED if raters else DICE


def test_scores(results: pd.DataFrame) -> list[dict[str, Any]]:
    """:data:`SCORE_COLUMNS` records of a model's test results (click sequences at their last click)."""
    return headline(results)[SCORE_COLUMNS].to_dict("records")


def rater_test_scores(results: pd.DataFrame) -> list[dict[str, Any]]:
    """:data:`GED` score records of a model's multi-rater test results (``raters.parquet``): per
    sampler, the objects scored and the mean (and median) GED and mean matched IoU over them."""
    grouped = results.groupby("sampler", sort=True)
    table = pd.DataFrame(
        {
            "n": grouped.size(),
            "ged_mean": grouped["ged"].mean(),
            "ged_median": grouped["ged"].median(),
            "matched_iou_mean": grouped["matched_iou"].mean(),
        }
    ).reset_index()
    return table[GED.score_columns].to_dict("records")


def zero_shot_scores(study: Path, scoring: Scoring = DICE) -> list[dict[str, Any]]:
    """The test scores of the base model (``study/zero_shot``; none before it ran)."""
    from samia.evaluation.raters import read_rater_results

    folder = study / ZERO_SHOT_FOLDER
    if scoring is GED:
        results = read_rater_results(folder)
        return [] if results is None else rater_test_scores(results)
    path = folder / "results.parquet"
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


def runs_table(records: list[dict[str, Any]], zero_shot: list[dict[str, Any]], scoring: Scoring = DICE) -> pd.DataFrame:
    """``scoring.run_columns`` rows: ``zero_shot`` (test score records of the base model) first,
    then each run record's test scores with its training facts."""
    columns = scoring.run_columns
    rows = [{"method": ZERO_SHOT, "n_cases": 0, "repeat": 0, "run": ZERO_SHOT, **score} for score in zero_shot]
    for record in records:
        facts = {k: v for k, v in record.items() if k in columns}
        rows += [{**facts, **score} for score in record["test"]]
    return pd.DataFrame(rows, columns=columns)


def _interval(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean of ``values`` (NaN for fewer than 2)."""
    if len(values) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def curve_table(runs: pd.DataFrame, method_order: list[str], scoring: Scoring = DICE) -> pd.DataFrame:
    """Per ``scoring.curve_keys`` (e.g. with :data:`DICE`): ``repeats``, ``dice_mean`` (over repeats),
    ``dice_std``, ``dice_ci_low``/``dice_ci_high`` (95% t-interval), ``nsd_mean``,
    ``train_seconds_mean``, ``peak_rss_mb_max``, ``trainable_parameters``; methods in
    ``method_order`` (zero-shot first)."""
    score, keys = scoring.score, scoring.curve_keys
    rows = []
    for key, group in runs.groupby(keys, sort=False):
        values = group[f"{score}_mean"].to_numpy(float)
        low, high = _interval(values)
        rows.append(
            {
                **dict(zip(keys, key)),
                "repeats": len(group),
                f"{score}_mean": float(values.mean()),
                f"{score}_std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                f"{score}_ci_low": low,
                f"{score}_ci_high": high,
                f"{scoring.second}_mean": float(group[f"{scoring.second}_mean"].mean()),
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
        [*scoring.keys, "method", "n_cases"], key=lambda c: c.map(rank) if c.name == "method" else c
    ).reset_index(drop=True)


def headline_curve(curve: pd.DataFrame, scoring: Scoring, selection: str = PLOT_SELECTION) -> pd.DataFrame:
    """The curve points a reader looks at first: ``selection``'s rows (:data:`DICE`) or every row
    (:data:`GED`), with the score keys, method, training cases, repeats, mean score and its interval,
    training seconds and peak RSS."""
    score = scoring.score
    shown = scoring.at_selection(curve, selection)
    keys = [key for key in scoring.keys if key != "selection"]
    columns = [*keys, "method", "n_cases", "repeats", f"{score}_mean", f"{score}_ci_low", f"{score}_ci_high"]
    return shown[[*columns, "train_seconds_mean", "peak_rss_mb_max"]].reset_index(drop=True)


def _panels(table: pd.DataFrame, scoring: Scoring, selection: str) -> dict[str, pd.DataFrame]:
    """``table``'s rows (curve or runs) per panel of the plot: per strategy at ``selection``
    (:data:`DICE`); per deterministic sampler, each with the ``latent`` rows (``ua_adapter``
    runs) too (:data:`GED`)."""
    if scoring is DICE:
        chosen = scoring.at_selection(table, selection)
        return {strategy: chosen[chosen["strategy"] == strategy] for strategy in dict.fromkeys(chosen["strategy"])}
    samplers = [s for s in dict.fromkeys(table["sampler"]) if s != LATENT_SAMPLER] or [LATENT_SAMPLER]
    return {s: table[table["sampler"].isin([s, LATENT_SAMPLER])] for s in samplers}


def learning_curve_png(
    curve: pd.DataFrame, runs: pd.DataFrame, selection: str, method_order: list[str], scoring: Scoring = DICE
) -> bytes:
    """The plot: per panel (:func:`_panels`), the test score against training cases, one line per
    method (mean over repeats, shaded 95% interval, each run a dot), zero-shot as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    score = scoring.score
    curve_panels, run_panels = _panels(curve, scoring, selection), _panels(runs, scoring, selection)
    figure = Figure(figsize=(4.2 * max(1, len(curve_panels)), 3.8), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, max(1, len(curve_panels)), squeeze=False)[0])
    colours = matplotlib.colormaps["tab10"]
    top = (
        1.0
        if not scoring.lower_is_better
        else max(1e-3, 1.1 * float(np.nanmax(curve[f"{score}_ci_high"].fillna(curve[f"{score}_mean"]))))
    )
    for axes, (title, rows) in zip(panels, curve_panels.items()):
        base = rows[rows["method"] == ZERO_SHOT]
        if len(base):
            axes.axhline(float(base[f"{score}_mean"].iloc[0]), color="black", linestyle="--", label=ZERO_SHOT)
        for index, method in enumerate(m for m in method_order if m in set(rows["method"])):
            line = rows[rows["method"] == method].sort_values("n_cases")
            colour = colours(index % 10)
            axes.plot(line["n_cases"], line[f"{score}_mean"], marker="o", color=colour, label=method)
            low, high = line[f"{score}_ci_low"], line[f"{score}_ci_high"]
            axes.fill_between(line["n_cases"], low, high, color=colour, alpha=0.15)
            dots = run_panels[title][run_panels[title]["method"] == method]
            axes.scatter(dots["n_cases"], dots[f"{score}_mean"], s=10, color=colour, alpha=0.6)
        ticks = sorted(set(rows.loc[rows["method"] != ZERO_SHOT, "n_cases"]))
        axes.set_xscale("log", base=2)
        axes.set_xticks(ticks, [str(t) for t in ticks])
        detail = selection if scoring is DICE else "lower is better"
        axes.set(xlabel="training cases", ylabel=f"{scoring.label} ({detail})", title=title, ylim=(0, top))
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8, loc="upper right" if scoring.lower_is_better else "lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def write_curves(
    study: Path, method_order: list[str], scoring: Scoring = DICE, selection: str = PLOT_SELECTION
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Write ``runs.csv``, ``curve.csv``, ``errors.csv`` and ``learning_curve.png`` (atomically)
    into ``study``; returns ``(runs, curve, errors)``."""
    runs = runs_table(run_records(study), zero_shot_scores(study, scoring), scoring)
    curve = curve_table(runs, method_order, scoring)
    errors = error_table(study)
    for name, frame in (("runs.csv", runs), ("curve.csv", curve), ("errors.csv", errors)):
        atomic_write_bytes(study / name, frame.to_csv(index=False).encode())
    if not curve.empty:
        png = learning_curve_png(curve, runs, selection, method_order, scoring)
        atomic_write_bytes(study / "learning_curve.png", png)
    return runs, curve, errors
