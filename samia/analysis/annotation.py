"""The report of annotation folders (``samia annotate`` or the scripted annotator): time and
interactions per object, the quality of the accepted masks against the ground truth, and
SAM-assisted against manual annotation of the same objects with a paired test (Huang et al.'s
human study, on the user's own data).

Objects pair across an assisted and a manual folder by case and object name. Differences are
assisted minus manual; the test is :func:`samia.analysis.stats.paired_test` (Wilcoxon signed-rank,
bootstrap interval of the mean difference).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from samia.analysis import formatting, plots
from samia.analysis.report import ReportTable, Section, _figure, write_report
from samia.analysis.stats import N_RESAMPLES, paired_test
from samia.annotate.timing import IDLE_SECONDS, object_rows
from samia.errors import InputError
from samia.version import __version__

PAIRED_MEASURES = (("active_s", "active time (s)"), ("interactions", "interactions"), ("dice", "Dice"), ("nsd", "NSD"))
"""``(column, label)`` compared between the modes."""


@dataclass(frozen=True)
class AnnotationReport:
    """What :func:`build_annotation_report` wrote."""

    html: Path
    markdown: Path
    objects: pd.DataFrame
    summary: pd.DataFrame
    paired: pd.DataFrame


def summary_table(objects: pd.DataFrame) -> pd.DataFrame:
    """Per folder and mode: objects, time, interactions, first masks taken as they were, quality."""
    rows = []
    for (folder, mode), group in objects.groupby(["folder", "mode"], sort=False):
        first = group["first_mask_accepted"].dropna()
        rows.append(
            {
                "folder": Path(folder).name,
                "mode": mode,
                "objects": len(group),
                "active_s_median": float(group["active_s"].median()),
                "active_s_total": float(group["active_s"].sum()),
                "interactions_mean": float(group["interactions"].mean()),
                "undos_total": int(group["undos"].sum()),
                "first_mask_accepted": float(first.astype(float).mean()) if len(first) else np.nan,
                "dice_mean": float(group["dice"].mean()),
                "nsd_mean": float(group["nsd"].mean()),
                "model_latency_ms_median": float(group["model_latency_ms"].median()),
            }
        )
    return pd.DataFrame(rows)


def paired_table(objects: pd.DataFrame, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """Assisted against manual on the objects both annotated (by case and name), per measure; the
    objects of one case are averaged (``n`` counts cases, ``n_pairs`` objects)."""
    assisted = objects[objects["mode"] == "assisted"].drop_duplicates(["case", "name"])
    manual = objects[objects["mode"] == "manual"].drop_duplicates(["case", "name"])
    both = assisted.merge(manual, on=["case", "name"], suffixes=("_assisted", "_manual"))
    rows = []
    for column, label in PAIRED_MEASURES:
        test = paired_test(
            both[f"{column}_assisted"].to_numpy(float),
            both[f"{column}_manual"].to_numpy(float),
            rng,
            n_resamples,
            cases=both["case"].to_numpy(),
        )
        rows.append({"measure": label, **test.to_record()})
    return pd.DataFrame(rows)


def _time_figure(objects: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    axes = figure.subplots(1, 2)
    modes = [m for m in ("assisted", "manual") if m in set(objects["mode"])]
    for axis, (column, label) in zip(axes, PAIRED_MEASURES[:2]):
        values = [objects.loc[objects["mode"] == m, column].to_numpy(float) for m in modes]
        axis.boxplot(values, showfliers=False)
        axis.set_xticks(range(1, len(modes) + 1), modes)  # (boxplot's own label argument was renamed in 3.9)
        for position, series in enumerate(values, start=1):
            jitter = np.linspace(-0.12, 0.12, len(series)) if len(series) > 1 else np.zeros(len(series))
            axis.scatter(position + jitter, series, s=10, color=plots.colour(position - 1), zorder=3)
        axis.set_ylabel(label)
        axis.set_title(f"{label} per object")
    return figure


def build_annotation_report(
    folders: Sequence[str | Path], out: str | Path, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> AnnotationReport:
    """Write the annotation study of ``folders`` into ``out`` (``report.html``, ``report.md``,
    ``tables/annotation_*.csv|md``, ``figures/annotation_time.png``).

    Raises:
        InputError: a folder without an annotation log, or no annotated object at all.
    """
    objects = pd.concat([object_rows(Path(folder)) for folder in folders], ignore_index=True)
    if objects.empty:
        raise InputError(folders[0], "the annotation log records no object")
    rng = np.random.default_rng(seed)
    summary = summary_table(objects)
    paired = paired_table(objects, rng, n_resamples)
    per_object = objects.assign(folder=objects["folder"].map(lambda f: Path(f).name))
    sections = [
        Section(
            "annotation",
            "Annotation time and interactions",
            f"Active time: gaps between an object's events, each counted up to {IDLE_SECONDS:g} s. "
            "Interactions: clicks + boxes + strokes (brush, eraser, polygon). Dice and NSD (2 mm): accepted masks "
            "against the dataset's ground truth.",
            tables=[
                ReportTable("annotation_summary", "Per folder and mode.", summary, _view(summary)),
                ReportTable("annotation_objects", "Per object.", per_object, _view(per_object), collapsed=True),
            ],
            figures=[_figure("annotation_time", "Time and interactions per object, by mode.", _time_figure(objects))],
        )
    ]
    modes = set(objects["mode"])
    compare = Section("assisted_vs_manual", "SAM-assisted vs manual (paired by case and object)")
    if {"assisted", "manual"} <= modes and int(paired["n"].max()) > 0:
        compare.intro = "Differences are assisted minus manual; Wilcoxon signed-rank test, BCa bootstrap 95% interval."
        compare.tables.append(ReportTable("annotation_paired", "Paired comparison.", paired, _paired_view(paired)))
    else:
        compare.notes.append("needs an assisted and a manual annotation folder of the same objects")
    sections.append(compare)
    generated = (
        f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}; "
        f"{n_resamples} bootstrap resamples, seed {seed}."
    )
    html, markdown, _, _ = write_report(sections, Path(out), generated)
    return AnnotationReport(html, markdown, objects, summary, paired)


def _view(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda col: col.map(lambda v: formatting.number(v) if isinstance(v, float) else str(v)))


def _paired_view(paired: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "measure": paired["measure"],
            "cases": paired["n"].astype(str),
            "objects": paired["n_pairs"].astype(str),
            "assisted": paired["mean_a"].map(formatting.number),
            "manual": paired["mean_b"].map(formatting.number),
            "difference": paired["mean_difference"].map(formatting.number),
            "95% CI": [formatting.interval(lo, hi) for lo, hi in zip(paired["ci_low"], paired["ci_high"])],
            "p": formatting.p_values(paired),
        }
    )
