"""The report of annotation folders (``samia annotate`` or the scripted annotator): time and
interactions per object, the quality of the accepted masks against the ground truth, and
SAM-assisted against manual annotation of the same objects with a paired test (Huang et al.'s
human study, on the user's own data).

Objects pair across an assisted and a manual folder by case and object name. Differences are
assisted minus manual; the test is :func:`samia.analysis.stats.paired_test` (Wilcoxon signed-rank,
bootstrap interval of the mean difference).

Folders of named raters (``samia annotate --rater``) are also compared with each other
(:func:`rater_agreement_table`): inter-rater Dice beside model-rater Dice, object by object.
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
from samia.annotate.log import study_rater
from samia.annotate.session import MODEL_ANSWERS
from samia.annotate.timing import IDLE_SECONDS, case_labels, object_rows
from samia.errors import InputError
from samia.io import read_label
from samia.metrics.multirater import inter_rater_dice, pairwise_iou
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
    raters: pd.DataFrame
    """:func:`rater_agreement_table` (no rows without two named raters)."""


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


def rater_folders(folders: Sequence[str | Path]) -> dict[str, Path]:
    """Rater name -> annotation folder, for the folders of named raters (the others are left out).

    Raises:
        InputError: two folders of one rater (compare one folder per rater).
    """
    named: dict[str, Path] = {}
    for folder in map(Path, folders):
        rater = study_rater(folder)
        if rater is not None and rater in named:
            raise InputError(
                folder, f"a second folder of rater {rater!r} (the first: {named[rater]}); give one per rater"
            )
        if rater is not None:
            named[rater] = folder
    return named


def rater_agreement_table(raters: dict[str, Path]) -> pd.DataFrame:
    """One row per object (case and object name) accepted by two or more raters.

    Columns: ``case``, ``name``, ``raters`` (their names), ``n_raters``, ``inter_rater_dice``
    (mean over the pairs of raters), ``model_rater_dice`` (the model's first answer to one rater's
    first click or box against each *other* rater's mask, mean over those ordered pairs: the model
    judged by raters who did not start from that answer) and ``model_own_dice`` (each rater's mask
    against the model's first answer to that rater: how much the rater changed it). The model
    columns are NaN where a rater's folder has no model answer (manual mode, volumes). Empty
    against empty counts as Dice 1.
    """
    masks: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    answers: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for rater, folder in raters.items():
        for case in sorted(p.name for p in Path(folder).iterdir() if p.is_dir()):
            labels, names = case_labels(Path(folder), case)
            if labels is None:
                continue
            answer_path = Path(folder) / case / MODEL_ANSWERS
            model = np.asarray(read_label(answer_path).array) if answer_path.is_file() else None
            for value in (int(v) for v in np.unique(labels) if v):
                key = (case, names.get(value, f"object {value}"))
                masks.setdefault(key, {})[rater] = labels == value
                if model is not None and (model == value).any():
                    answers.setdefault(key, {})[rater] = model == value
    rows = []
    for (case, name), by_rater in sorted(masks.items()):
        if len(by_rater) < 2:
            continue
        who = sorted(by_rater)
        stack = np.stack([by_rater[r] for r in who])
        row = {"case": case, "name": name, "raters": ", ".join(who), "n_raters": len(who)}
        row["inter_rater_dice"] = inter_rater_dice(stack)
        row["model_rater_dice"], row["model_own_dice"] = _model_dice(answers.get((case, name), {}), who, stack)
        rows.append(row)
    columns = ["case", "name", "raters", "n_raters", "inter_rater_dice", "model_rater_dice", "model_own_dice"]
    return pd.DataFrame(rows, columns=columns)


def _model_dice(answers: dict[str, np.ndarray], raters: list[str], masks: np.ndarray) -> tuple[float, float]:
    """``(model-rater Dice, model-own Dice)`` of one object (:func:`rater_agreement_table`)."""
    answered = [i for i, rater in enumerate(raters) if rater in answers]
    if not answered:
        return float("nan"), float("nan")
    iou = pairwise_iou(np.stack([answers[raters[i]] for i in answered]), masks)
    dice = 2 * iou / (1 + iou)
    own = [dice[row, i] for row, i in enumerate(answered)]
    others = [dice[row, j] for row, i in enumerate(answered) for j in range(len(raters)) if j != i]
    return float(np.mean(others)), float(np.mean(own))


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
    raters = rater_agreement_table(rater_folders(folders))
    sections.append(_rater_section(raters, rng, n_resamples))
    generated = (
        f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}; "
        f"{n_resamples} bootstrap resamples, seed {seed}."
    )
    html, markdown, _, _ = write_report(sections, Path(out), generated)
    return AnnotationReport(html, markdown, objects, summary, paired, raters)


def _rater_section(raters: pd.DataFrame, rng: np.random.Generator, n_resamples: int) -> Section:
    """Inter-rater against model-rater Dice, per object and as a paired test over cases."""
    section = Section("raters", "Raters compared: inter-rater and model-rater Dice")
    if raters.empty:
        section.notes.append("needs annotation folders of two or more named raters (samia annotate --rater)")
        return section
    section.intro = (
        "Per object accepted by two or more raters: inter-rater Dice (mean over pairs of raters); model-rater "
        "Dice (the model's first answer to one rater's first click or box against each other rater's mask); "
        "model-own Dice (each rater's mask against the model's answer to that rater)."
    )
    test = paired_test(
        raters["model_rater_dice"].to_numpy(float),
        raters["inter_rater_dice"].to_numpy(float),
        rng,
        n_resamples,
        cases=raters["case"].to_numpy(),
    )
    compared = pd.DataFrame([{"measure": "model-rater minus inter-rater Dice", **test.to_record()}])
    section.tables += [
        ReportTable("annotation_raters", "Per object.", raters, _view(raters)),
        ReportTable(
            "annotation_raters_paired", "Model-rater against inter-rater Dice.", compared, _paired_view(compared)
        ),
    ]
    return section


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
