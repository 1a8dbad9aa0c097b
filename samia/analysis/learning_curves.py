"""The report of learning-curve studies (``samia finetune-study``): held-out Dice against the number
of training cases per method, with training time, peak memory and trainable parameters."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from samia.analysis import formatting
from samia.analysis.report import ReportFigure, ReportTable, Section, _slug, write_report
from samia.errors import InputError
from samia.study.config import read_study_file
from samia.study.curves import (
    PLOT_SELECTION,
    curve_table,
    error_table,
    learning_curve_png,
    run_records,
    runs_table,
    zero_shot_scores,
)
from samia.study.runner import STUDY_FILE
from samia.version import __version__


@dataclass(frozen=True)
class StudyReport:
    """What :func:`build_study_report` wrote, and the curves of every study (``study`` column)."""

    html: Path
    markdown: Path
    curve: pd.DataFrame


def _curve_view(curve: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy": curve["strategy"],
            "method": curve["method"],
            "training cases": curve["n_cases"].astype(str),
            "repeats": curve["repeats"].astype(str),
            "test Dice (mean of repeats)": curve["dice_mean"].map(formatting.number),
            "95% interval": [formatting.interval(a, b) for a, b in zip(curve["dice_ci_low"], curve["dice_ci_high"])],
            "NSD": curve["nsd_mean"].map(formatting.number),
            "training s": curve["train_seconds_mean"].map(lambda v: formatting.number(v, 0)),
            "peak RSS MB": curve["peak_rss_mb_max"].map(lambda v: formatting.number(v, 0)),
            "trainable parameters": curve["trainable_parameters"].map(lambda v: "" if pd.isna(v) else f"{int(v):,}"),
        }
    )


def study_section(folder: Path, selection: str = PLOT_SELECTION) -> tuple[Section, pd.DataFrame]:
    """The section of one study folder and its curve table.

    Raises:
        InputError: ``folder`` has no ``study.yaml``, or no run and no zero-shot result yet.
    """
    if not (folder / STUDY_FILE).is_file():
        raise InputError(folder, "is not a study folder (no study.yaml; written by samia finetune-study)")
    config, split = read_study_file(folder / STUDY_FILE)
    runs = runs_table(run_records(folder), zero_shot_scores(folder))
    if runs.empty:
        raise InputError(folder, "the study has no finished run yet")
    curve = curve_table(runs, config.methods)
    chosen = curve[curve["selection"] == selection]
    name = _slug(folder.name)
    section = Section(
        f"study_{name}",
        f"Learning curves: {folder.name}",
        f"{config.model.name} fine-tuned on nested subsets of the {len(split['pool'])} training cases "
        f"({config.repeats} seeded orders), early-stopped on {len(split['val'])} validation cases, tested on the same "
        f"{len(split['test'])} held-out cases; Dice is each run's mean over the test objects, then the mean over "
        f"repeats with its 95% t-interval (selection rule: {selection}).",
        tables=[
            ReportTable(
                f"study_{name}_curve",
                f"Test Dice per method and training cases ({selection}).",
                chosen,
                _curve_view(chosen),
            ),
            ReportTable(
                f"study_{name}_runs", "Every run, strategy and selection rule.", runs, runs.astype(str), collapsed=True
            ),
        ],
        figures=[
            ReportFigure(
                f"study_{name}_learning_curve",
                "Held-out Dice against training cases (dots: runs; band: 95% interval; dashed: zero-shot).",
                learning_curve_png(curve, runs, selection, config.methods),
            )
        ],
    )
    errors = error_table(folder)
    section.notes += [f"run {row.run} failed: {row.error}: {row.message}" for row in errors.itertuples()]
    return section, curve.assign(study=folder.name)


def build_study_report(folders: Sequence[str | Path], out: str | Path) -> StudyReport:
    """Write the learning curves of ``folders`` into ``out`` (``report.html``, ``report.md``,
    ``tables/study_*``, ``figures/study_*``)."""
    built = [study_section(Path(folder)) for folder in folders]
    generated = f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}."
    html, markdown, _, _ = write_report([section for section, _ in built], Path(out), generated)
    return StudyReport(html, markdown, pd.concat([curve for _, curve in built], ignore_index=True))
