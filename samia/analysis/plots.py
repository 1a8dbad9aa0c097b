"""The report's plots, as matplotlib figures (object-oriented API, no pyplot state, Agg rendering).

Every function takes already-selected rows and returns a :class:`matplotlib.figure.Figure`;
:func:`figure_png` renders one to PNG bytes. Colours: one per model in box plots and line plots,
one per strategy in factor scatter plots (matplotlib's ``tab10``).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from samia.analysis.results import case_labels, model_order, selection_order, strategy_order
from samia.analysis.stats import bootstrap_ci

LOG_SCALE_FACTORS = frozenset({"area_px", "area_mm2", "area_fraction"})
"""Factors spanning orders of magnitude, drawn on a log axis."""

INTEGER_FACTORS = frozenset({"efd_order", "n_components"})
"""Factors that take whole numbers only: ticks at integers."""

MIN_GAP_WIDTH_IN = 5.0
"""The oracle-gap plot is at least this wide (inches), so its title and legend fit."""

TREND_BINS = 6
DPI = 100
_PALETTE = colormaps["tab10"]


def colour(index: int) -> tuple[float, float, float, float]:
    """The ``index``-th colour of ``tab10`` (cycling)."""
    return _PALETTE(index % _PALETTE.N)


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes (``DPI`` dots per inch; the figures use constrained layout)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05)  # nothing clipped
    return buffer.getvalue()


def _grouped_boxes(axes: Axes, groups: Sequence[str], series: Mapping[str, Sequence[np.ndarray]]) -> None:
    """Box plots at ``groups`` positions, one box per series (model) side by side, coloured by series."""
    width = 0.8 / max(len(series), 1)
    for index, (name, values) in enumerate(series.items()):
        offset = (index - (len(series) - 1) / 2) * width
        kept = [(position, v) for position, v in enumerate(values) if len(v)]
        if not kept:
            continue
        boxes = axes.boxplot(
            [v for _, v in kept],
            positions=[p + offset for p, _ in kept],
            widths=width * 0.85,
            patch_artist=True,
            manage_ticks=False,
            flierprops={"markersize": 3, "alpha": 0.5},
            medianprops={"color": "black"},
        )
        for patch in boxes["boxes"]:
            patch.set_facecolor(colour(index))
            patch.set_alpha(0.75)
        axes.plot([], [], "s", color=colour(index), label=name)
    axes.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    axes.set_xlim(-0.6, len(groups) - 0.4)


def _dice_axis(axes: Axes, label: str = "Dice") -> None:
    axes.set_ylim(-0.03, 1.03)
    axes.set_ylabel(label)
    axes.grid(axis="y", alpha=0.3)


def dice_by_strategy(scores: pd.DataFrame, title: str) -> Figure:
    """Box plots of per-object Dice by strategy, one panel per selection rule, one colour per model.

    Args:
        scores: :func:`samia.analysis.results.object_scores` rows (of one modality).
        title: the figure's title.
    """
    strategies, selections = strategy_order(scores), selection_order(scores)
    models = model_order(scores)
    panel_width = 1.2 + 0.4 * len(strategies) * max(len(models), 1.5)
    figure = Figure(figsize=(min(18.0, panel_width * len(selections)), 3.6), layout="constrained")
    panels = figure.subplots(1, len(selections), sharey=True, squeeze=False)[0]
    for axes, selection in zip(panels, selections):
        chosen = scores[scores["selection"] == selection]
        series = {
            model: [
                chosen.loc[(chosen["model_id"] == model) & (chosen["strategy"] == s), "dice"].dropna().to_numpy()
                for s in strategies
            ]
            for model in models
        }
        _grouped_boxes(axes, strategies, series)
        axes.set_title(f"selection: {selection}", fontsize=10)
        _dice_axis(axes, "Dice (per object)" if axes is panels[0] else "")
    if len(models) > 1:
        panels[-1].legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=11)
    return figure


def dice_vs_clicks(clicks: pd.DataFrame, rng: np.random.Generator) -> Figure:
    """Mean Dice (with its 95 % bootstrap interval, shaded) against the number of clicks.

    One panel per selection rule, one line per model.

    Args:
        clicks: rows with ``n_clicks >= 1``.
        rng: generator of the bootstrap intervals.
    """
    selections = selection_order(clicks)
    figure = Figure(figsize=(4.2 * len(selections), 3.4), layout="constrained")
    panels = figure.subplots(1, len(selections), sharey=True, squeeze=False)[0]
    for axes, selection in zip(panels, selections):
        chosen = clicks[clicks["selection"] == selection]
        for index, model in enumerate(model_order(clicks)):
            rows = chosen[chosen["model_id"] == model]
            if rows.empty:
                continue
            per_click = rows.assign(_case=case_labels(rows)).groupby("n_clicks", sort=True)
            means = per_click["dice"].mean()
            counts = means.index.to_numpy()
            intervals = np.array(
                [bootstrap_ci(group["dice"].to_numpy(), rng, cases=group["_case"]) for _, group in per_click]
            )
            axes.plot(counts, means.to_numpy(), "o-", color=colour(index), label=model, markersize=4)
            axes.fill_between(counts, intervals[:, 0], intervals[:, 1], color=colour(index), alpha=0.2)
        axes.set_xlabel("clicks")
        axes.set_title(f"selection: {selection}", fontsize=10)
        _dice_axis(axes, "mean Dice" if axes is panels[0] else "")
        axes.xaxis.get_major_locator().set_params(integer=True)
    panels[-1].legend(fontsize=8, loc="lower right")
    figure.suptitle("Dice vs number of clicks (mean, 95% bootstrap CI)", fontsize=11)
    return figure


def band_order(bands: Sequence[str]) -> list[str]:
    """Jitter bands sorted by their first number (``"0-10px"`` < ``"10-20px"`` < ``"20-30px"``)."""

    def start(band: str) -> tuple[float, str]:
        found = re.search(r"[-+]?\d*\.?\d+", band)
        return (float(found.group()) if found else math.inf, band)

    return sorted(set(bands), key=start)


def dice_vs_jitter(jitter: pd.DataFrame, selection: str) -> Figure:
    """Box plots of Dice per jitter band, one panel per jittered strategy, one colour per model.

    Args:
        jitter: rows with a non-empty ``jitter_band`` (one selection rule).
        selection: the rule, for the title.
    """
    strategies = strategy_order(jitter)
    models = model_order(jitter)
    figure = Figure(figsize=(4.5 * len(strategies), 3.4), layout="constrained")
    panels = figure.subplots(1, len(strategies), sharey=True, squeeze=False)[0]
    for axes, strategy in zip(panels, strategies):
        chosen = jitter[jitter["strategy"] == strategy]
        bands = band_order(chosen["jitter_band"])
        series = {
            m: [
                chosen.loc[(chosen["model_id"] == m) & (chosen["jitter_band"] == b), "dice"].dropna().to_numpy()
                for b in bands
            ]
            for m in models
        }
        _grouped_boxes(axes, bands, series)
        axes.set_title(strategy, fontsize=10)
        axes.set_xlabel("jitter band")
        _dice_axis(axes, "Dice" if axes is panels[0] else "")
    if len(models) > 1:
        panels[-1].legend(fontsize=8, loc="lower right")
    figure.suptitle(f"Dice vs prompt jitter (selection: {selection})", fontsize=11)
    return figure


def _trend(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Medians of ``x`` and ``y`` in up to :data:`TREND_BINS` quantile bins of ``x`` (>= 3 points each)."""
    bins = min(TREND_BINS, len(x) // 3)
    if bins < 2:
        return np.empty(0), np.empty(0)
    order = np.argsort(x, kind="stable")
    chunks = np.array_split(order, bins)
    return np.array([np.median(x[c]) for c in chunks]), np.array([np.median(y[c]) for c in chunks])


def dice_vs_factors(scores: pd.DataFrame, factors: Sequence[str], title: str) -> Figure:
    """Per-object Dice against each factor: one panel per factor, one colour per strategy.

    Points are objects; the line is the trend (medians of Dice in quantile bins of the factor).
    Factors of :data:`LOG_SCALE_FACTORS` are drawn on a log axis.

    Args:
        scores: :func:`~samia.analysis.results.object_scores` rows of one model and selection rule,
            with the factor columns.
        factors: the factors to draw (at least one).
        title: the figure's title.
    """
    strategies = strategy_order(scores)
    columns = min(4, len(factors))
    rows = math.ceil(len(factors) / columns)
    figure = Figure(figsize=(3.6 * columns, 3.0 * rows + 0.6), layout="constrained")
    panels = figure.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for axes, factor in zip(panels, factors):
        for index, strategy in enumerate(strategies):
            chosen = scores[scores["strategy"] == strategy][[factor, "dice"]].dropna()
            x, y = chosen[factor].to_numpy(dtype=float), chosen["dice"].to_numpy(dtype=float)
            if factor in LOG_SCALE_FACTORS:
                x, y = x[x > 0], y[x > 0]
            axes.scatter(x, y, s=9, alpha=0.45, color=colour(index), label=strategy, linewidths=0)
            axes.plot(*_trend(x, y), "-", color=colour(index), linewidth=1.8)
        if factor in LOG_SCALE_FACTORS:
            axes.set_xscale("log")
            decades = np.log10(x.max() / x.min()) if len(x) and x.min() > 0 else 0.0
            subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)  # labels that fit side by side
            axes.xaxis.set_major_locator(LogLocator(subs=subs, numticks=8))
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axes.xaxis.set_minor_formatter(NullFormatter())
        else:
            axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=factor in INTEGER_FACTORS))
        axes.set_xlabel(factor)
        _dice_axis(axes, "Dice (per object)" if axes.get_subplotspec().is_first_col() else "")
    for axes in panels[len(factors) :]:
        axes.set_visible(False)
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8, markerscale=1.5)
    figure.suptitle(title, fontsize=11)
    return figure


def selection_gap(gaps: pd.DataFrame, first: str, second: str) -> Figure:
    """Box plots of ``Dice(first) - Dice(second)`` per strategy, one colour per model.

    Args:
        gaps: :func:`samia.analysis.tables.selection_gaps` rows (``model_id``, ``strategy``, ``gap``).
        first, second: the two selection rules, for the labels.
    """
    strategies = strategy_order(gaps)
    models = model_order(gaps)
    width = min(16.0, max(MIN_GAP_WIDTH_IN, 2.0 + 0.6 * len(strategies) * max(len(models), 1.5)))
    figure = Figure(figsize=(width, 3.8), layout="constrained")
    axes = figure.subplots()
    series = {
        m: [gaps.loc[(gaps["model_id"] == m) & (gaps["strategy"] == s), "gap"].to_numpy() for s in strategies]
        for m in models
    }
    _grouped_boxes(axes, strategies, series)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_ylabel(f"Dice({first}) − Dice({second})")
    axes.grid(axis="y", alpha=0.3)
    if len(models) > 1:
        long_names = max(len(m) for m in models) > 24
        figure.legend(
            *axes.get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncols=1 if long_names else 2
        )
    figure.suptitle(f"What choosing by {second} costs\nagainst {first}, per prompt", fontsize=11)
    return figure


def dice_vs_key_distance(curves: pd.DataFrame) -> Figure:
    """Mean Dice of the slices at each distance from the key slice, one line per strategy, one panel
    per model.

    Args:
        curves: rows with ``model_id``, ``strategy``, ``offset`` (slices from the key slice, signed:
            negative = below it) and ``dice`` (one slice of one object).
    """
    models = model_order(curves)
    figure = Figure(figsize=(4.6 * len(models), 3.4), layout="constrained")
    panels = figure.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for axes, model in zip(panels, models):
        chosen = curves[curves["model_id"] == model]
        for index, strategy in enumerate(strategy_order(chosen)):
            means = chosen[chosen["strategy"] == strategy].groupby("offset", sort=True)["dice"].mean()
            axes.plot(means.index.to_numpy(), means.to_numpy(), ".-", color=colour(index), label=strategy)
        axes.axvline(0, color="0.6", linewidth=0.8)
        axes.set_xlabel("slices from the key slice")
        axes.set_title(model, fontsize=10)
        _dice_axis(axes, "mean slice Dice" if axes is panels[0] else "")
    panels[-1].legend(fontsize=8, loc="best")
    figure.suptitle("Dice along the volume vs distance from the key slice", fontsize=11)
    return figure
