"""The report of learning-curve studies (``samia finetune-study``): held-out Dice (one-truth data) or
GED against the raters (multi-rater data) against the number of training cases per method, with
training time, peak memory and trainable parameters."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from samia.analysis import formatting
from samia.analysis.report import ReportFigure, ReportTable, Section, _slug, write_report
from samia.errors import InputError
from samia.study.config import StudyConfig, read_study_file
from samia.study.curves import (
    DICE,
    PLOT_SELECTION,
    Scoring,
    curve_table,
    error_table,
    headline_curve,
    learning_curve_png,
    run_records,
    runs_table,
    scoring_of,
    zero_shot_scores,
)
from samia.study.runner import STUDY_FILE
from samia.version import __version__


@dataclass(frozen=True)
class StudyReport:
    """What :func:`build_study_report` wrote, and each study's headline curve points
    (:func:`samia.study.curves.headline_curve`) by study folder name."""

    html: Path
    markdown: Path
    headlines: dict[str, pd.DataFrame]


def _curve_view(curve: pd.DataFrame, scoring: Scoring) -> pd.DataFrame:
    score, second = scoring.score, scoring.second
    return pd.DataFrame(
        {
            **{key: curve[key] for key in scoring.keys if key != "selection"},
            "method": curve["method"],
            "training cases": curve["n_cases"].astype(str),
            "repeats": curve["repeats"].astype(str),
            f"{scoring.label} (mean of repeats)": curve[f"{score}_mean"].map(formatting.number),
            "95% interval": [
                formatting.interval(a, b) for a, b in zip(curve[f"{score}_ci_low"], curve[f"{score}_ci_high"])
            ],
            scoring.second_label: curve[f"{second}_mean"].map(formatting.number),
            "training s": curve["train_seconds_mean"].map(lambda v: formatting.number(v, 0)),
            "peak RSS MB": curve["peak_rss_mb_max"].map(lambda v: formatting.number(v, 0)),
            "trainable parameters": curve["trainable_parameters"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        }
    )


def _description(config: StudyConfig, split: dict[str, Any], scoring: Scoring, selection: str) -> str:
    start = (
        f"{config.model.name} fine-tuned on nested subsets of the {len(split['pool'])} training cases "
        f"({config.repeats} seeded orders), early-stopped on {len(split['val'])} validation cases, tested on the same "
        f"{len(split['test'])} held-out cases; "
    )
    if scoring is DICE:
        return start + (
            "Dice is each run's mean over the test objects, then the mean over repeats with its 95% t-interval "
            f"(selection rule: {selection})."
        )
    return start + (
        f"each object has up to {len(split['raters'])} raters' masks; GED (lower is better) is each run's mean over "
        f"the test objects of the Generalised Energy Distance between its {config.samples} samples and the raters "
        "(d = 1 - IoU), then the mean over repeats with its 95% t-interval. ua_adapter runs sample their latent "
        "code; every other model is scored with each sampler."
    )


def study_section(folder: Path, selection: str = PLOT_SELECTION) -> tuple[Section, pd.DataFrame]:
    """The section of one study folder and its headline curve points.

    Raises:
        InputError: ``folder`` has no ``study.yaml``, or no run and no zero-shot result yet.
    """
    if not (folder / STUDY_FILE).is_file():
        raise InputError(folder, "is not a study folder (no study.yaml; written by samia finetune-study)")
    config, split = read_study_file(folder / STUDY_FILE)
    scoring = scoring_of(split.get("raters", ()))
    runs = runs_table(run_records(folder), zero_shot_scores(folder, scoring), scoring)
    if runs.empty:
        raise InputError(folder, "the study has no finished run yet")
    curve = curve_table(runs, config.methods, scoring)
    chosen = scoring.at_selection(curve, selection)
    name = _slug(folder.name)
    per = f"({selection})" if scoring is DICE else "(per sampler)"
    section = Section(
        f"study_{name}",
        f"Learning curves: {folder.name}",
        _description(config, split, scoring, selection),
        tables=[
            ReportTable(
                f"study_{name}_curve",
                f"{scoring.label} per method and training cases {per}.",
                chosen,
                _curve_view(chosen, scoring),
            ),
            ReportTable(f"study_{name}_runs", "Every run and score key.", runs, runs.astype(str), collapsed=True),
        ],
        figures=[
            ReportFigure(
                f"study_{name}_learning_curve",
                f"{scoring.label} against training cases (dots: runs; band: 95% interval; dashed: zero-shot).",
                learning_curve_png(curve, runs, selection, config.methods, scoring),
            )
        ],
    )
    errors = error_table(folder)
    section.notes += [f"run {row.run} failed: {row.error}: {row.message}" for row in errors.itertuples()]
    return section, headline_curve(curve, scoring, selection)


def build_study_report(folders: Sequence[str | Path], out: str | Path) -> StudyReport:
    """Write the learning curves of ``folders`` into ``out`` (``report.html``, ``report.md``,
    ``tables/study_*``, ``figures/study_*``)."""
    built = {Path(folder).name: study_section(Path(folder)) for folder in folders}
    generated = f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}."
    html, markdown, _, _ = write_report([section for section, _ in built.values()], Path(out), generated)
    return StudyReport(html, markdown, {name: headline for name, (_, headline) in built.items()})
