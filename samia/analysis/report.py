"""``samia report``: one self-contained HTML page, Markdown and CSV tables from one or more result folders.

:func:`build_report` loads the rows (``samia.analysis.results``), computes the tables
(``samia.analysis.tables``), draws the plots and overlays (``samia.analysis.plots``,
``samia.analysis.overlays``) and writes into ``out``::

    out/report.html        every table and figure, images embedded as data URIs (opens offline)
    out/report.md          every table as Markdown, figures linked from figures/
    out/tables/<name>.csv  raw numbers of every table
    out/tables/<name>.md   the table as shown in the report
    out/figures/<name>.png every figure

A part whose inputs are missing (no click rows, no jitter bands, no factor columns, a single model,
masks not saved, ...) is replaced by a note saying why, so the report runs on any results.
"""

from __future__ import annotations

import base64
import datetime
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure

from samia.analysis import formatting, overlays, plots, tables
from samia.analysis.results import (
    PROTOCOL_ORDER,
    VOLUME_CLICK_STRATEGIES,
    final_clicks,
    load_results,
    object_scores,
    ordered,
    selection_order,
)
from samia.analysis.stats import N_RESAMPLES
from samia.errors import ConfigurationError, SamiaError
from samia.evaluation.summary import results_distance_unit
from samia.selection import SELECTIONS
from samia.version import __version__

_NUMERIC = re.compile(r"[-+−–0-9.e\[\], ±]+")


@dataclass
class ReportFigure:
    """One figure: file name (without ``.png``), caption and PNG bytes."""

    name: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class ReportTable:
    """One table: file name, caption, the raw frame (CSV) and its string view (HTML, Markdown)."""

    name: str
    caption: str
    raw: pd.DataFrame
    view: pd.DataFrame
    collapsed: bool = False

    @property
    def cells(self) -> list[list[tuple[str, bool]]]:
        """The view's rows as ``(text, is_numeric)`` cells (numbers are right-aligned, labels left)."""
        return [
            [(str(cell), bool(_NUMERIC.fullmatch(str(cell)))) for cell in row]
            for row in self.view.itertuples(index=False)
        ]


@dataclass
class Section:
    """A part of the report: what it shows, or notes saying why it could not."""

    anchor: str
    title: str
    intro: str = ""
    tables: list[ReportTable] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    gallery: list[ReportFigure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportOutcome:
    """What :func:`build_report` wrote."""

    html: Path
    markdown: Path
    tables: list[Path]
    figures: list[Path]
    headline: pd.DataFrame
    notes: list[str]


def _slug(text: str) -> str:
    """A file name: runs of characters other than letters, digits, ``-`` and ``.`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")


def _figure(name: str, caption: str, figure: Figure) -> ReportFigure:
    return ReportFigure(_slug(name), caption, plots.figure_png(figure))


class _ReportBuilder:
    """Computes the sections of one report (see :func:`build_report`)."""

    def __init__(self, results: pd.DataFrame, selection: str | None, n_cases: int, n_resamples: int, seed: int) -> None:
        self.results = results
        self.final = final_clicks(results)  # what summary tables and overlays show of click sequences
        self.n_cases = n_cases
        self.n_resamples = n_resamples
        self.seed = seed
        present = selection_order(results)
        if selection is not None and selection not in present:
            raise ConfigurationError(
                f"selection rule {selection!r} is not in the results (they hold {', '.join(present)})"
            )
        self.selection = selection or present[0]
        self.factors = tables.available_factors(results)
        self.scores = object_scores(results, extra=["modality", "object", *self.factors])

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator per purpose, so adding a table never changes another's intervals."""
        return np.random.default_rng([self.seed, zlib.crc32(purpose.encode())])

    def sections(self) -> list[Section]:
        return [
            self.inputs(),
            self.overview(),
            self.comparisons(),
            self.selection_gap(),
            self.clicks(),
            *([self.volumes()] if (self.results["level"] == "volume").any() else []),
            self.jitter(),
            self.factor_analysis(),
            self.breakdown(),
            self.cases(),
        ]

    def inputs(self) -> Section:
        grouped = self.results.groupby(["run", "results_dir"], sort=False)
        runs = grouped.agg(
            rows=("dice", "size"),
            models=("model_id", lambda v: ", ".join(sorted(v.unique()))),
            checkpoint=("checkpoint", lambda v: ", ".join(sorted(v.dropna().astype(str).unique())) or "bundled"),
            weights_sha256=("weights_sha256", lambda v: ", ".join(sorted(v.astype(str).unique()))),
            datasets=("dataset", lambda v: ", ".join(sorted(v.unique()))),
            strategies=("strategy", lambda v: ", ".join(ordered(v, PROTOCOL_ORDER))),
            selections=("selection", lambda v: ", ".join(ordered(v, SELECTIONS))),
        ).reset_index()
        view = runs.astype(str)
        return Section(
            "inputs",
            "Inputs",
            f"{len(self.results)} result rows from {len(runs)} run(s); plots and overlays of one "
            f"selection rule use {self.selection}.",
            tables=[
                ReportTable(
                    "runs",
                    "The result folders read, with each model's weights file and the SHA-256 of its weights.",
                    runs,
                    view,
                )
            ],
        )

    def overview(self) -> Section:
        section = Section("overview", "Dice by model, strategy and selection rule")
        headline = tables.summary_table(
            self.final, tables.SUMMARY_LEVELS["headline"], self.rng("headline"), self.n_resamples
        )
        section.tables.append(
            ReportTable(
                "headline",
                "Per model, strategy and selection rule: rows, Dice mean ± std, median and 95% BCa bootstrap "
                "interval of the mean, mean NSD, median HD95 (click sequences at their last click, jitter "
                "bands pooled).",
                headline,
                formatting.summary_view(headline, tables.SUMMARY_LEVELS["headline"], results_distance_unit(self.final)),
            )
        )
        for modality, scores in self.scores.groupby("modality", sort=True):
            section.figures.append(
                _figure(
                    f"dice_by_strategy_{modality}",
                    f"{modality}: per-object Dice (prompt variants averaged, clicks at the last click) by "
                    "strategy; one panel per selection rule.",
                    plots.dice_by_strategy(scores, f"Dice by strategy — {modality}"),
                )
            )
        return section

    def comparisons(self) -> Section:
        section = Section(
            "comparisons",
            "Paired comparisons",
            "Wilcoxon signed-rank tests on the same objects (strategies) or the same prompts (selection "
            "rules, models); difference = A − B with its 95% BCa bootstrap interval; effect size = "
            "matched-pairs rank-biserial r; p-values Holm-adjusted within each table.",
        )
        families: list[tuple[str, str, list[str], Callable[..., pd.DataFrame], str]] = [
            (
                "strategies",
                "Strategies against each other, per model and selection rule (unit: object).",
                ["model_id", "selection"],
                tables.strategy_comparisons,
                "strategy",
            ),
            (
                "selections",
                "Selection rules against each other, per model and strategy (unit: prompt).",
                ["model_id", "strategy"],
                tables.selection_comparisons,
                "selection",
            ),
            (
                "models",
                "Models (weights) against each other, per strategy and selection rule (unit: prompt).",
                ["strategy", "selection"],
                tables.model_comparisons,
                "model_id",
            ),
        ]
        for name, caption, within, compute, arm in families:
            if self.results[arm].nunique() < 2:
                section.notes.append(
                    f"No comparison of {name}: the results hold only one ({self.results[arm].iloc[0]})."
                )
                continue
            frame = compute(self.results, self.rng(f"compare_{name}"), self.n_resamples)
            if frame.empty:
                section.notes.append(f"No comparison of {name}: no object or prompt was evaluated under two of them.")
                continue
            section.tables.append(
                ReportTable(f"compare_{name}", caption, frame, formatting.comparison_view(frame, within))
            )
        return section

    def selection_gap(self) -> Section:
        section = Section("selection_gap", "Oracle vs predicted-IoU selection")
        gaps = tables.selection_gaps(self.results, "oracle", "predicted_iou")
        if gaps.empty:
            section.notes.append("Not drawn: the results need both the oracle and predicted_iou selection rules.")
            return section
        section.figures.append(
            _figure(
                "oracle_gap",
                "Dice lost per prompt when the mask is chosen by the model's predicted IoU (what a user gets) "
                "instead of by the ground truth (what the papers report).",
                plots.selection_gap(gaps, "oracle", "predicted_iou"),
            )
        )
        return section

    def clicks(self) -> Section:
        section = Section("clicks", "Dice vs number of clicks")
        if "n_clicks" not in self.results.columns or not (self.results["n_clicks"].fillna(0) > 0).any():
            section.notes.append("Not drawn: no rows of iterative click strategies (column n_clicks) in the results.")
            return section
        rows = self.results[(self.results["n_clicks"].fillna(0) > 0) & (self.results["level"] == "slice")]
        if rows.empty:
            section.notes.append("Not drawn: no slice-level click rows (volume clicks are in the 3D part).")
            return section
        section.figures.append(
            _figure(
                "dice_vs_clicks",
                "Mean Dice after each simulated click.",
                plots.dice_vs_clicks(rows, self.rng("clicks")),
            )
        )
        return section

    def volumes(self) -> Section:
        """The 3D part (only for results with volume rows): volume Dice by strategy, Dice along the
        volume, encoder calls, click curves."""
        section = Section(
            "volumes",
            "Volumes (3D)",
            "Rows with level = volume: one per object and volume, scored in 3D (Dice over voxels; HD95 and "
            "NSD in mm with the (z, y, x) spacing). slice_boxes is the oracle upper bound (the tight box on "
            "every slice, the extent given).",
        )
        rows = self.final[self.final["level"] == "volume"]
        keys = tables.SUMMARY_LEVELS["headline"]
        summary = tables.summary_table(rows, keys, self.rng("volumes"), self.n_resamples)
        section.tables.append(
            ReportTable(
                "volume_dice",
                "Volume Dice per model, strategy and selection rule (box3d_clicks at its last click).",
                summary,
                formatting.summary_view(summary, keys, results_distance_unit(rows)),
            )
        )
        cost = tables.volume_cost_table(rows)
        section.tables.append(
            ReportTable(
                "volume_cost",
                "Encoder calls per volume (each slice at most once for all strategies of a case: a strategy run "
                "after another on the same volume reuses its slices) and decoded slices per object.",
                cost,
                cost.astype(str),
            )
        )
        scores = object_scores(rows)
        section.figures.append(
            _figure(
                "volume_dice_by_strategy",
                "Per-object volume Dice by strategy.",
                plots.dice_by_strategy(scores, "Volume Dice by strategy"),
            )
        )
        curves = tables.slice_dice_curves(rows[rows["selection"] == self.selection])
        if not curves.empty:
            section.figures.append(
                _figure(
                    "dice_vs_key_distance",
                    f"Mean Dice of the slices at each distance from the key slice (selection {self.selection}): "
                    "how fast propagation loses the object.",
                    plots.dice_vs_key_distance(curves),
                )
            )
        volume_rows = self.results[self.results["level"] == "volume"]
        clicks = volume_rows[volume_rows["strategy"].isin(VOLUME_CLICK_STRATEGIES)]
        if clicks["strategy"].nunique() > 1:  # both engines: one line and table row per model and engine
            clicks = clicks.assign(model_id=clicks["model_id"] + " (" + clicks["strategy"] + ")")
        if not clicks.empty:
            auc = tables.click_auc_table(clicks)
            section.tables.append(
                ReportTable(
                    "volume_click_auc",
                    "box3d_clicks (and its memory-tracked twin): mean over objects of the area under the Dice and "
                    "NSD vs clicks curves (clicks "
                    "1..N, one unit per click, as the CVPR 2025 challenge scores it) and the final Dice.",
                    auc,
                    auc.round(4).astype(str),
                )
            )
            section.figures.append(
                _figure(
                    "volume_dice_vs_clicks",
                    "box3d_clicks: mean volume Dice after each correction click (0 = box3d alone).",
                    plots.dice_vs_clicks(clicks, self.rng("volume_clicks")),
                )
            )
        return section

    def jitter(self) -> Section:
        section = Section("jitter", "Dice vs prompt jitter")
        if "jitter_band" not in self.results.columns:
            section.notes.append("Not drawn: no jittered prompts (column jitter_band) in the results.")
            return section
        band = self.results["jitter_band"].fillna("").astype(str)
        rows = self.results[(band != "") & (self.results["selection"] == self.selection)]
        if rows.empty:
            section.notes.append(f"Not drawn: no jittered prompts under the {self.selection} selection rule.")
            return section
        section.figures.append(
            _figure(
                "dice_vs_jitter",
                "Dice per band of prompt displacement (pixels).",
                plots.dice_vs_jitter(rows, self.selection),
            )
        )
        return section

    def factor_analysis(self) -> Section:
        section = Section(
            "factors",
            "Which object properties predict failure",
            "Spearman correlation of per-object Dice with each factor, and the partial correlation "
            "controlling for the other factors (size represented by area_fraction); p-values unadjusted.",
        )
        if not self.factors:
            section.notes.append(
                "No factor analysis: the results have no object factor columns (area_px, contrast, efd_order, ...). "
                "Results written by a samia version that stores them are needed."
            )
            return section
        correlations = tables.factor_correlations(self.results, self.factors)
        section.tables.append(
            ReportTable(
                "factor_correlations",
                "Dice vs object factors, per model, strategy and selection rule.",
                correlations,
                formatting.correlation_view(correlations),
                collapsed=len(correlations) > 40,
            )
        )
        chosen = self.scores[self.scores["selection"] == self.selection]
        for model, scores in chosen.groupby("model_id", sort=False):
            varying = [f for f in self.factors if scores[f].nunique() > 1]
            if not varying:
                section.notes.append(f"No factor plot of {model}: every factor has a single value.")
                continue
            section.figures.append(
                _figure(
                    f"dice_vs_factors_{model}",
                    f"{model}, selection {self.selection}: per-object Dice against each factor that varies; lines "
                    "are medians in quantile bins.",
                    plots.dice_vs_factors(scores, varying, f"Dice vs object factors — {model}"),
                )
            )
        return section

    def breakdown(self) -> Section:
        section = Section("breakdown", "Per modality, per object, best and worst targets")
        for level in ("by_modality", "by_object"):
            keys = tables.SUMMARY_LEVELS[level]
            summary = tables.summary_table(self.final, keys, self.rng(level), self.n_resamples)
            section.tables.append(
                ReportTable(
                    level,
                    f"Dice {level.replace('_', ' ')}.",
                    summary,
                    formatting.summary_view(summary, keys, results_distance_unit(self.final)),
                    collapsed=len(summary) > 40,
                )
            )
            if level == "by_object":
                targets = tables.target_table(summary)
                section.tables.append(
                    ReportTable(
                        "targets",
                        "The 5 best and 5 worst objects (targets) of every model, strategy and selection rule.",
                        targets,
                        formatting.target_view(targets),
                        collapsed=len(targets) > 40,
                    )
                )
        return section

    def cases(self) -> Section:
        section = Section(
            "cases",
            "Best and worst cases",
            f"The {self.n_cases} best and worst results of every model and strategy (selection "
            f"{self.selection}). Yellow: ground truth; cyan: prediction; green / red dots: positive / "
            "negative clicks; dashed orange: box.",
        )
        if self.n_cases < 1:
            section.notes.append("No overlays asked for (--cases 0).")
            return section
        slices = self.final[(self.final["selection"] == self.selection) & (self.final["level"] == "slice")]
        chosen = overlays.extreme_cases(slices, self.n_cases)
        missing_masks = 0
        failures: list[str] = []
        for _, row in chosen.iterrows():
            try:
                view = overlays.load_case_view(row)
            except SamiaError as error:
                failures.append(f"{row['case']} / {row['object']}: {error}")
                continue
            missing_masks += view.prediction is None
            name = (
                f"case_{row['extreme']}_{row['model_id']}_{row['strategy']}_{row['case']}_s{row['slice']}"
                f"_l{row['label']}_c{row['component']}_v{row['variant']}"
            )
            figure = overlays.overlay_figure(view, overlays.case_title(row, view.prediction is not None))
            section.gallery.append(_figure(name, f"{row['extreme']}: {row['object']}", figure))
        if failures:
            section.notes.append(f"{len(failures)} overlay(s) not drawn, e.g. {failures[0]}.")
        if missing_masks:
            section.notes.append(
                f"{missing_masks} overlay(s) show the ground truth and prompt only: their results were written by "
                "an earlier samia, which kept no masks in results.parquet (column mask_rle) and saved no files "
                "without --save-masks; evaluate again into a new --out folder to draw the predictions."
            )
        return section


def _write_table(table: ReportTable, folder: Path) -> list[Path]:
    csv, markdown = folder / f"{table.name}.csv", folder / f"{table.name}.md"
    table.raw.to_csv(csv, index=False)
    markdown.write_text(f"{table.caption}\n\n{formatting.markdown_table(table.view)}")
    return [csv, markdown]


def _markdown_report(sections: Sequence[Section], generated: str) -> str:
    parts = [f"# samia report\n\n{generated}\n"]
    for section in sections:
        parts.append(f"\n## {section.title}\n")
        if section.intro:
            parts.append(section.intro + "\n")
        parts += [f"\n- {note}" for note in section.notes]
        for table in section.tables:
            parts.append(f"\n{table.caption}\n\n{formatting.markdown_table(table.view)}")
        parts += [f"\n![{f.caption}](figures/{f.name}.png)\n" for f in section.figures + section.gallery]
    return "".join(parts)


def build_report(
    directories: Sequence[str | Path],
    out: str | Path,
    *,
    selection: str | None = None,
    n_cases: int = 1,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> ReportOutcome:
    """Write the report of the result folders ``directories`` into ``out`` (layout: module docstring).

    Args:
        directories: folders written by ``samia evaluate`` (their rows are concatenated).
        out: the report folder (created; the tables and figures of an earlier report in it are
            deleted first).
        selection: the selection rule of single-rule plots and overlays; default: the first present
            in :data:`samia.evaluation.SELECTIONS` order (``oracle``, ``predicted_iou``, ``single``).
        n_cases: best and worst overlays per model and strategy.
        n_resamples: bootstrap resamples of every interval.
        seed: seed of the bootstrap (the same seed gives the same report).

    Raises:
        MissingFileError / InputError: a folder without results; no rows at all.
        ConfigurationError: ``selection`` not in the results, ``n_cases < 0``, ``n_resamples < 100``.
    """
    if n_cases < 0:
        raise ConfigurationError("--cases must be >= 0")
    if n_resamples < 100:
        raise ConfigurationError("--resamples must be >= 100")
    results = load_results(directories)
    builder = _ReportBuilder(results, selection, n_cases, n_resamples, seed)
    sections = builder.sections()
    generated = (
        f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}; "
        f"{n_resamples} bootstrap resamples, seed {seed}."
    )
    html_path, markdown_path, table_paths, figure_paths = write_report(sections, Path(out), generated)
    headline = next(t.view for s in sections for t in s.tables if t.name == "headline")
    notes = [note for s in sections for note in s.notes]
    return ReportOutcome(html_path, markdown_path, table_paths, figure_paths, headline, notes)


def write_report(sections: Sequence[Section], out: Path, generated: str) -> tuple[Path, Path, list[Path], list[Path]]:
    """Write ``sections`` into ``out``: ``report.html`` (self-contained), ``report.md``,
    ``tables/*.csv|md`` and ``figures/*.png`` (those of an earlier report deleted first); returns
    ``(html, markdown, tables, figures)``. ``generated`` is the line saying what made it."""
    table_folder, figure_folder = out / "tables", out / "figures"
    for folder, patterns in ((table_folder, ("*.csv", "*.md")), (figure_folder, ("*.png",))):
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (p for pattern in patterns for p in folder.glob(pattern)):
            stale.unlink()
    table_paths = [p for s in sections for t in s.tables for p in _write_table(t, table_folder)]
    figure_paths = []
    for figure in (f for s in sections for f in s.figures + s.gallery):
        path = figure_folder / f"{figure.name}.png"
        path.write_bytes(figure.png)
        figure_paths.append(path)
    environment = Environment(
        loader=PackageLoader("samia.analysis", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    html = environment.get_template("report.html.j2").render(sections=sections, generated=generated)
    html_path, markdown_path = out / "report.html", out / "report.md"
    html_path.write_text(html, encoding="utf-8")
    markdown_path.write_text(_markdown_report(sections, generated), encoding="utf-8")
    return html_path, markdown_path, table_paths, figure_paths
