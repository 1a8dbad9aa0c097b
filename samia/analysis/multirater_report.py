"""The multi-rater section of ``samia report``: how the raters agree, how each sampler's masks match
their distribution, and where the model hesitates beside where the raters disagree.

Input: results folders of ``samia evaluate`` on multi-rater data (``raters.parquet`` and ``maps/``,
:mod:`samia.evaluation.raters`). Tables:

- ``raters_samplers``: per model and sampler, the mean of every distribution metric with a case
  bootstrap interval for GED and matched IoU;
- ``raters_agreement``: per rater, the mean Dice of that rater with each other rater (inter-rater)
  beside the mean Dice of each sampler's answer with that rater (model-rater).

Figures: for the objects whose raters disagree most, the image, the raters' disagreement map
``t (1 - t)`` and each sampler's uncertainty map ``p (1 - p)``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from samia.analysis import formatting, plots
from samia.analysis.report import ReportFigure, ReportTable, Section, write_report
from samia.analysis.stats import bootstrap_ci
from samia.errors import MissingFileError
from samia.evaluation.raters import RATER_RESULTS, map_file, read_rater_results
from samia.version import __version__

METRICS = (
    ("ged", "GED (lower better)"),
    ("matched_iou", "matched IoU"),
    ("best_match_dice", "best-match Dice"),
    ("diversity", "diversity"),
    ("ece", "ECE (lower better)"),
    ("uncertainty_agreement", "uncertainty vs disagreement r"),
    ("dice_majority", "Dice vs majority"),
    ("dice_staple", "Dice vs STAPLE"),
    ("dice_rater_mean", "Dice vs raters (mean)"),
)
"""The columns of the sampler table, in order, with their headings."""


@dataclass(frozen=True)
class RaterReportOutcome:
    """What :func:`build_rater_report` wrote, and the sampler table's view (for the command's output)."""

    html: Path
    markdown: Path
    samplers: pd.DataFrame


def is_rater_folder(folder: str | Path) -> bool:
    """True for a results folder of a multi-rater evaluation."""
    return (Path(folder) / RATER_RESULTS).is_file()


def _load(directories: Sequence[str | Path]) -> pd.DataFrame:
    frames = []
    for directory in directories:
        frame = read_rater_results(directory)
        if frame is None:
            raise MissingFileError(
                Path(directory) / RATER_RESULTS, "no multi-rater results here (run samia evaluate on multi-rater data)"
            )
        frames.append(frame.assign(folder=str(directory)))
    results = pd.concat(frames, ignore_index=True)
    if results.empty:
        raise MissingFileError(Path(directories[0]) / RATER_RESULTS, "the run holds no row (every case failed?)")
    return results


def sampler_table(results: pd.DataFrame, rng: np.random.Generator, n_resamples: int) -> ReportTable:
    """Per model and sampler, every metric's mean (and GED / matched IoU intervals over cases)."""
    raw_rows, view_rows = [], []
    for (model, sampler), group in results.groupby(["model", "sampler"], sort=True):
        record: dict[str, object] = {"model": model, "sampler": sampler, "objects": len(group)}
        record["samples"] = int(group["n_samples"].max())
        view = dict(record)
        for column, heading in METRICS:
            mean = float(group[column].mean())
            record[column], view[heading] = mean, formatting.number(mean)
        for column in ("ged", "matched_iou"):
            low, high = bootstrap_ci(
                group[column].to_numpy(float), rng, n_resamples=n_resamples, cases=group["case"].to_numpy()
            )
            record[f"{column}_ci_low"], record[f"{column}_ci_high"] = low, high
            view[f"{column} 95% CI"] = formatting.interval(low, high)
        raw_rows.append(record)
        view_rows.append(view)
    return ReportTable(
        "raters_samplers",
        "Each sampler's masks against the raters' (means over objects; intervals: case bootstrap).",
        pd.DataFrame(raw_rows),
        pd.DataFrame(view_rows),
    )


def agreement_table(
    results: pd.DataFrame, rater_masks: dict[tuple[str, str, int], dict[str, np.ndarray]]
) -> ReportTable:
    """Per rater: mean Dice with the other raters (over objects both annotated) and each sampler's."""
    from samia.metrics.multirater import pairwise_iou

    inter: dict[str, list[float]] = {}
    for masks in rater_masks.values():
        names = list(masks)
        if len(names) < 2:
            continue
        iou = pairwise_iou(np.stack(list(masks.values())), np.stack(list(masks.values())))
        dice = 2 * iou / (1 + iou)
        for i, name in enumerate(names):
            inter.setdefault(name, []).extend(float(dice[i, j]) for j in range(len(names)) if j != i)
    model_rater: dict[tuple[str, str], list[float]] = {}
    for row in results.itertuples():
        for rater, value in json.loads(row.rater_dice).items():
            model_rater.setdefault((f"{row.model} {row.sampler}", rater), []).append(value)
    raters = sorted({rater for _, rater in model_rater} | set(inter))
    columns = sorted({name for name, _ in model_rater})
    raw = pd.DataFrame(
        [
            {
                "rater": rater,
                "objects": sum(1 for masks in rater_masks.values() if rater in masks),
                "inter-rater Dice": float(np.mean(inter[rater])) if rater in inter else float("nan"),
                **{f"Dice of {name}": float(np.mean(model_rater.get((name, rater), [np.nan]))) for name in columns},
            }
            for rater in raters
        ]
    )
    view = raw.copy()
    for column in raw.columns[2:]:
        view[column] = [formatting.number(value) for value in raw[column]]
    return ReportTable(
        "raters_agreement",
        "Per rater: mean Dice with every other rater of the same objects (inter-rater), and of each sampler's answer (model-rater).",
        raw,
        view,
    )


def _rater_masks(results: pd.DataFrame) -> dict[tuple[str, str, int], dict[str, np.ndarray]]:
    """Per (folder, case, label): rater -> mask, re-read from the dataset the run names."""
    import yaml

    from samia.data.raters import rater_objects, read_rater_labels, scan_rater_dataset

    found: dict[tuple[str, str, int], dict[str, np.ndarray]] = {}
    for folder, group in results.groupby("folder"):
        config = yaml.safe_load((Path(folder) / "config.yaml").read_text())
        scan = scan_rater_dataset(config["data"], config.get("provenance", {}).get("layout", "auto"))
        wanted = set(group["case"])
        for case in (c for c in scan.cases if c.case_id in wanted):
            _, labels = read_rater_labels(case, scan)
            for obj in rater_objects(labels, scan.raters, int(config.get("min_area", 0))):
                found[(str(folder), case.case_id, obj.label)] = dict(zip(obj.raters, obj.masks))
    return found


def uncertainty_figures(results: pd.DataFrame, count: int) -> list[ReportFigure]:
    """For the ``count`` objects with the lowest inter-rater Dice: raters' disagreement beside each
    sampler's uncertainty (from the run's ``maps/``)."""
    from matplotlib.figure import Figure

    objects = (
        results.drop_duplicates(["folder", "case", "label"])
        .sort_values(["inter_rater_dice", "case"], na_position="last")
        .head(count)
    )
    figures = []
    for row in objects.itertuples():
        path = Path(row.folder) / map_file(row.case)
        if not path.is_file():
            continue
        with np.load(path) as maps:
            samplers = sorted(results[(results.folder == row.folder) & (results.case == row.case)]["sampler"].unique())
            panels = [("raters' disagreement", maps[f"raters_{row.label}"])] + [
                (f"{name} uncertainty", maps[f"{name}_{row.label}"])
                for name in samplers
                if f"{name}_{row.label}" in maps
            ]
        figure = Figure(figsize=(2.2 * len(panels), 2.4), layout="constrained")
        for axes, (title, probability) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
            p = probability.astype(np.float64)
            axes.imshow(p * (1 - p), cmap="magma", vmin=0, vmax=0.25)
            axes.set_title(title, fontsize=8)
            axes.set_axis_off()
        caption = (
            f"{row.case}, {row.label_name}: raters' disagreement t(1-t) and each sampler's uncertainty p(1-p) "
            f"(inter-rater Dice {formatting.number(row.inter_rater_dice)})"
        )
        figures.append(ReportFigure(f"uncertainty_{row.case}_{row.label}", caption, plots.figure_png(figure)))
    return figures


def build_rater_report(
    directories: Sequence[str | Path], out: str | Path, n_resamples: int = 2000, seed: int = 0, n_maps: int = 4
) -> RaterReportOutcome:
    """Write the multi-rater report of ``directories`` into ``out`` (``report.html``, ``report.md``,
    ``tables/``, ``figures/``).

    Raises:
        MissingFileError: a folder without ``raters.parquet``, or no row at all.
    """
    results = _load(directories)
    rng = np.random.default_rng(seed)
    samplers = sampler_table(results, rng, n_resamples)
    section = Section(
        "multirater",
        "Many raters",
        intro=(
            f"{results[['folder', 'case', 'label']].drop_duplicates().shape[0]} objects, "
            f"{int(results['n_raters'].min())} to {int(results['n_raters'].max())} raters each "
            f"(a rater who did not annotate an object is not counted). GED uses d = 1 - IoU with d(empty, empty) = 0."
        ),
        tables=[samplers, agreement_table(results, _rater_masks(results))],
        figures=uncertainty_figures(results, n_maps),
    )
    generated = f"samia {__version__}, {datetime.datetime.now().isoformat(timespec='seconds')}; seed {seed}."
    html, markdown, _, _ = write_report([section], Path(out), generated)
    return RaterReportOutcome(html, markdown, samplers.view)
