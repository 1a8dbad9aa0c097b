"""``samia evaluate``: a model x prompt strategies over a dataset, with resumable results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from samia.cli.choices import BACKEND_HELP, PRECISION_HELP, STRATEGY_HELP
from samia.cli.options import Axis, Checkpoint, ConnectedComponents, Instances, Layout, Modality, ModelName, Preset
from samia.models.catalogue import DEFAULT_MODEL

if TYPE_CHECKING:
    from samia.evaluation.config import EvaluationConfig
    from samia.evaluation.driver import EvaluationOutcome
    from samia.evaluation.raters import RaterEvaluationConfig
    from samia.evaluation.ray_executor import RayExecutor


def evaluate_command(
    data: Annotated[
        Path,
        typer.Option(
            help="Dataset folder (folder pairs, MSD, nnU-Net raw, CVPR 2024, or a multi-rater layout).", metavar="DIR"
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            help="Results folder (re-running resumes it): a path, or a filesystem URI (s3://bucket/prefix, file:///path).",
            metavar="DIR",
        ),
    ],
    strategy: Annotated[list[str] | None, typer.Option(help=STRATEGY_HELP, metavar="NAME")] = None,
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    layout: Layout = "auto",
    modality: Modality = None,
    selection: Annotated[
        list[str] | None,
        typer.Option(help="Mask selection rule(s): oracle, predicted_iou, single (default: all).", metavar="NAME"),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.", metavar="N")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.", metavar="N")] = None,
    case: Annotated[
        list[str] | None, typer.Option(help="Only this case id; repeat for several (default: all).", metavar="ID")
    ] = None,
    save_masks: Annotated[
        bool, typer.Option("--save-masks", help="Write every predicted mask under OUT/masks/.", metavar="")
    ] = False,
    axis: Axis = 0,
    protocol: Annotated[
        str,
        typer.Option(
            help="Prompt rules: samia, or huang2024 (Huang et al.'s released code, exactly; fixes --min-area and --preset).",
            metavar="NAME",
        ),
    ] = "samia",
    input_pipeline: Annotated[
        str | None,
        typer.Option(
            help="Image/prompt pipeline: sam, litemedsam or medsam (default: the model's reference one).",
            metavar="NAME",
        ),
    ] = None,
    min_area: Annotated[
        int | None,
        typer.Option(
            help="Skip (and count) objects under this many pixels on a slice (default: the protocol's, 50 or 51).",
            metavar="N",
        ),
    ] = None,
    connected_components: ConnectedComponents = False,
    instances: Instances = None,
    preset: Preset = None,
    decode_batch: Annotated[
        int, typer.Option(help="Prompts decoded at a time (bounds memory per image).", metavar="N")
    ] = 32,
    nsd_tolerance: Annotated[float, typer.Option(help="NSD tolerance in mm.", metavar="NUMBER")] = 2.0,
    nsd_variant: Annotated[
        str,
        typer.Option(
            help="NSD: surfel (the published one, DeepMind surface-distance) or boundary_pixels.", metavar="NAME"
        ),
    ] = "surfel",
    cvpr24_nsd: Annotated[
        bool, typer.Option("--cvpr24-nsd", help="CVPR 2024 challenge rule: NSD = 0 where Dice <= 0.2.", metavar="")
    ] = False,
    device: Annotated[str, typer.Option(help="torch device.", metavar="NAME")] = "cpu",
    backend: Annotated[str, typer.Option(help=BACKEND_HELP, metavar="NAME")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP, metavar="NAME")] = "fp32",
    embedding_cache: Annotated[
        Path | None, typer.Option(help="Folder for an on-disk embedding cache.", metavar="DIR")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            help="Replay the prompts of this prompts.jsonl (strategies default to the file's).", metavar="FILE"
        ),
    ] = None,
    jitter_band: Annotated[
        list[str] | None,
        typer.Option(help="Jitter band LOW-HIGH; repeat (default 0-10, 10-20, 20-30).", metavar="TEXT"),
    ] = None,
    jitter_unit: Annotated[
        str, typer.Option(help="Jitter unit: px or percent (of the box size).", metavar="NAME")
    ] = "px",
    jitter_repeats: Annotated[int, typer.Option(help="Random draws per jitter band.", metavar="N")] = 3,
    max_clicks: Annotated[int, typer.Option(help="Clicks of the clicks strategy.", metavar="N")] = 10,
    points_per_side: Annotated[int, typer.Option(help="Everything mode: grid points per side.", metavar="N")] = 32,
    points_per_batch: Annotated[int, typer.Option(help="Everything mode: points per decoder call.", metavar="N")] = 64,
    pred_iou_thresh: Annotated[
        float, typer.Option(help="Everything mode: predicted-IoU threshold.", metavar="NUMBER")
    ] = 0.88,
    stability_score_thresh: Annotated[
        float, typer.Option(help="Everything mode: stability-score threshold.", metavar="NUMBER")
    ] = 0.95,
    box_nms_thresh: Annotated[
        float, typer.Option(help="Everything mode: box NMS IoU threshold.", metavar="NUMBER")
    ] = 0.7,
    executor: Annotated[
        str, typer.Option(help="Where cases run: local (this process) or ray (a Ray cluster).", metavar="NAME")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to use (HOST:PORT, ray://HOST:PORT or auto); default: a local instance on 127.0.0.1.",
            metavar="ADDRESS",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Ray workers, each with one model (default: as the cluster holds).", metavar="N")
    ] = None,
    cpus_per_worker: Annotated[
        float, typer.Option(help="CPUs each Ray worker reserves (its torch threads).", metavar="NUMBER")
    ] = 1.0,
    gpus_per_worker: Annotated[
        float,
        typer.Option(help="GPUs each Ray worker reserves (with --device cuda; 0.5 = two a GPU).", metavar="NUMBER"),
    ] = 0.0,
    sampler: Annotated[
        list[str] | None,
        typer.Option(
            help="Multi-rater data: sampler(s) single, multimask, jitter, flips, or latent for a ua_adapter model (default: all; latent).",
            metavar="NAME",
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Multi-rater data: samples of jitter and flips.", metavar="N")] = 8,
    jitter_fraction: Annotated[
        float, typer.Option(help="Multi-rater data: jitter of box corners, fraction of the box side.", metavar="NUMBER")
    ] = 0.1,
) -> None:
    """Evaluate MODEL on DATA with each STRATEGY; write OUT/results.parquet, summary.csv, errors.csv, config.yaml."""
    from samia.auto import EverythingSettings
    from samia.cli.paths import check_output_folder
    from samia.data.raters import rater_layout_of
    from samia.data.settings import CaseSettings
    from samia.errors import ConfigurationError
    from samia.evaluation import SELECTIONS, EvaluationConfig
    from samia.evaluation.folders import is_uri
    from samia.evaluation.raters import RaterEvaluationConfig
    from samia.metrics.settings import SurfaceSettings
    from samia.models.settings import ModelSettings
    from samia.prompts.settings import DEFAULT_JITTER_BANDS, PromptSettings

    if not is_uri(out):
        check_output_folder(Path(out))
    if rater_layout_of(data, layout):
        if strategy or executor != "local":
            raise ConfigurationError(
                f"{data} holds several raters per object: it is scored with --sampler (not --strategy) in this process"
            )
        _evaluate_raters(
            RaterEvaluationConfig(
                str(data),
                str(out),
                ModelSettings(model, None if checkpoint is None else str(checkpoint), device, backend, precision),
                sampler or None,
                samples,
                jitter_fraction,
                layout,
                preset,
                min_area or 0,
                seed,
                limit,
                case,
            )
        )
        return
    if sampler:
        raise ConfigurationError(f"--sampler is for multi-rater datasets; {data} has one mask per object")
    if executor not in ("local", "ray"):
        raise ConfigurationError(f"unknown --executor {executor!r}; known: local, ray")
    ray_options = (ray_address, workers, cpus_per_worker != 1.0, gpus_per_worker != 0.0)
    if executor == "local" and any(ray_options):
        raise ConfigurationError(
            "--ray-address, --workers, --cpus-per-worker and --gpus-per-worker need --executor ray"
        )

    config = EvaluationConfig(
        str(data),
        str(out),
        ModelSettings(
            model, None if checkpoint is None else str(checkpoint), device, backend, precision, input_pipeline
        ),
        list(strategy or []),
        reading=CaseSettings(layout, modality, axis, min_area, connected_components, instances, preset),
        prompting=PromptSettings(
            protocol, list(jitter_band or DEFAULT_JITTER_BANDS), jitter_unit, jitter_repeats, max_clicks
        ),
        surface=SurfaceSettings(nsd_tolerance, nsd_variant, 0.2 if cvpr24_nsd else None),
        everything=EverythingSettings(
            points_per_side,
            points_per_batch,
            pred_iou_thresh,
            stability_score_thresh,
            box_nms_thresh=box_nms_thresh,
        ),
        selections=list(selection or SELECTIONS),
        seed=seed,
        limit=limit,
        cases=case,
        save_masks=save_masks,
        embedding_cache_dir=None if embedding_cache is None else str(embedding_cache),
        prompts_file=None if prompts is None else str(prompts),
        decode_batch=decode_batch,
    )
    run_executor = _executor(executor, ray_address, workers, cpus_per_worker, gpus_per_worker)
    _print_outcome(_evaluate_with_progress(config, run_executor), out)


def _evaluate_raters(config: RaterEvaluationConfig) -> None:
    """A multi-rater run (:mod:`samia.evaluation.raters`), one progress line per case, and its headline."""
    from samia.evaluation.raters import evaluate_raters

    outcome = evaluate_raters(config, lambda case, done, total: typer.echo(f"[{done}/{total}] {case}", err=True))
    results = outcome.results
    typer.echo(
        f"samia evaluate: {len(results)} rows in {Path(config.out) / 'raters.parquet'} "
        f"({config.model.name}; {outcome.scan.layout}, raters {', '.join(outcome.scan.raters)})"
    )
    if len(results):
        means = results.groupby("sampler", sort=False)[["ged", "matched_iou", "dice_majority"]].mean()
        for name, row in means.iterrows():
            typer.echo(
                f"  {name}: GED {row.ged:.3f}, matched IoU {row.matched_iou:.3f}, Dice vs majority {row.dice_majority:.3f}"
            )
    failures = len(outcome.errors)
    typer.echo(f"failures: {failures}" + (f" (see {Path(config.out) / 'errors.csv'})" if failures else ""))


def _evaluate_with_progress(config: EvaluationConfig, executor: RayExecutor | None) -> EvaluationOutcome:
    """The run, with live bars for cases and prompt decodings on a terminal, and plain progress
    lines at a steady interval when stderr is a log file or a pipe."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from samia.cli.progress import PlainProgress, stderr_is_terminal
    from samia.evaluation import ProgressHooks, evaluate

    if not stderr_is_terminal():
        plain = PlainProgress(sys.stderr)
        plain.set_total("cases", None)
        hooks = ProgressHooks(
            cases_total=lambda total: plain.set_total("cases", total),
            case_done=lambda case: plain.advance("cases", 1, case),
            unit_started=lambda unit, total: plain.set_total("prompts", total, unit),
            prompts_done=lambda count: plain.advance("prompts", count),
        )
        return evaluate(config, hooks, executor)
    columns = (
        TextColumn("[bold]{task.fields[what]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeRemainingColumn(elapsed_when_finished=True),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        cases = progress.add_task("", total=None, what="cases  ")
        decodings = progress.add_task("", total=None, what="prompts")
        hooks = ProgressHooks(
            cases_total=lambda total: progress.update(cases, total=total),
            case_done=lambda case: progress.update(cases, advance=1, description=case),
            unit_started=lambda unit, total: progress.reset(decodings, total=total, description=unit),
            prompts_done=lambda count: progress.update(decodings, advance=count),
        )
        return evaluate(config, hooks, executor)


def _executor(name: str, address: str | None, workers: int | None, cpus: float, gpus: float) -> RayExecutor | None:
    """None (the local executor) or a :class:`~samia.evaluation.ray_executor.RayExecutor`."""
    if name == "local":
        return None
    from samia.evaluation.ray_executor import RayExecutor

    return RayExecutor(address, workers, cpus, gpus)


def _print_outcome(outcome: EvaluationOutcome, out: str) -> None:
    from samia.evaluation.folders import open_folder
    from samia.evaluation.summary import format_headline

    folder = open_folder(out)
    model = outcome.model
    typer.echo(
        f"samia evaluate: {len(outcome.results)} rows in {folder.where('results.parquet')} "
        f"({model.name} on {model.backend}, {model.precision})"
    )
    typer.echo(format_headline(outcome.results))
    if not outcome.instances.empty:
        for row in outcome.instances.itertuples():
            typer.echo(
                f"everything mode, {row.model} on {row.dataset}: instance F1 {row.f1:.3f} "
                f"(precision {row.precision:.3f}, recall {row.recall:.3f}; no oracle)"
            )
    typer.echo(
        f"units evaluated now: {outcome.units_run}, already done: {outcome.units_skipped}, "
        f"objects skipped as too small: {outcome.skipped_small}, failures: {len(outcome.errors)}"
        + (f" (see {folder.where('errors.csv')})" if len(outcome.errors) else "")
    )
    for warning in outcome.warnings.itertuples():
        times = f" ({warning.count} slices)" if warning.count > 1 else ""
        typer.echo(f"warning: {warning.path}: {warning.message}{times}", err=True)
    if len(outcome.warnings):
        typer.echo(f"{len(outcome.warnings)} input warning(s), listed in {folder.where('warnings.csv')}", err=True)
