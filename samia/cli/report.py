"""``samia report``: statistics, plots and pictures of one or more evaluation runs, as HTML, Markdown and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="Results folders written by `samia evaluate --out`, annotation folders written by "
            "`samia annotate --out`, or study folders written by `samia finetune-study --out` (one or more).",
            metavar="DIR",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Report folder: report.html, report.md, tables/, figures/.", metavar="DIR")],
    selection: Annotated[
        str | None,
        typer.Option(
            help="Selection rule of single-rule plots and overlays (default: oracle if present).", metavar="NAME"
        ),
    ] = None,
    cases: Annotated[int, typer.Option(help="Best and worst overlays per model and strategy.", metavar="N")] = 1,
    resamples: Annotated[
        int, typer.Option(help="Bootstrap resamples of every confidence interval.", metavar="N")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.", metavar="N")] = 0,
) -> None:
    """Write OUT/report.html (self-contained), OUT/report.md, OUT/tables/*.csv|md and OUT/figures/*.png."""
    from rich.console import Console

    from samia.analysis.annotation import build_annotation_report
    from samia.analysis.learning_curves import build_study_report
    from samia.analysis.multirater_report import build_rater_report, is_rater_folder
    from samia.analysis.report import build_report
    from samia.annotate.timing import is_annotation_folder
    from samia.cli.paths import check_output_folder
    from samia.errors import ConfigurationError
    from samia.evaluation.summary import text_table
    from samia.study import is_study_folder

    check_output_folder(out)
    studies = [folder for folder in results if is_study_folder(str(folder))]
    if studies and len(studies) < len(results):
        other = next(folder for folder in results if folder not in studies)
        raise ConfigurationError(
            f"{other} is not a study folder but {studies[0]} is: report study folders and evaluation folders apart"
        )
    if studies:
        built = build_study_report(results, out)
        typer.echo(f"samia report: {built.html}")
        for name, headline in built.headlines.items():
            typer.echo(f"{name}:")
            typer.echo(text_table(headline, keys=3))
        return
    raters = [folder for folder in results if is_rater_folder(folder)]
    if raters and len(raters) < len(results):
        raise ConfigurationError(
            f"{next(f for f in results if f not in raters)} is not a multi-rater run but {raters[0]} is: report them apart"
        )
    if raters:
        rater_report = build_rater_report(results, out, n_resamples=resamples, seed=seed)
        typer.echo(f"samia report: {rater_report.html}")
        typer.echo(text_table(rater_report.samplers, keys=2))
        return
    if all(is_annotation_folder(folder) for folder in results):
        study = build_annotation_report(results, out, n_resamples=resamples, seed=seed)
        typer.echo(f"samia report: {study.html}")
        typer.echo(text_table(study.summary.drop(columns=["folder"]), keys=1))
        return
    outcome = build_report(results, out, selection=selection, n_cases=cases, n_resamples=resamples, seed=seed)
    headline = outcome.headline[["model", "strategy", "selection", "cases", "rows", "Dice mean ± std", "Dice 95% CI"]]
    typer.echo(f"samia report: {outcome.html}")
    typer.echo(text_table(headline, keys=3))
    console = Console()
    console.print(
        f"{len(outcome.tables)} table files in {Path(out) / 'tables'}, {len(outcome.figures)} figures in "
        f"{Path(out) / 'figures'}, Markdown in {outcome.markdown}"
    )
    for note in outcome.notes:
        console.print(f"note: {note}", style="yellow", markup=False, highlight=False)
