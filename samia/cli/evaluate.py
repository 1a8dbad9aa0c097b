"""``samia evaluate``: a model x prompt strategies over a dataset, with resumable results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def evaluate_command(
    data: Annotated[Path, typer.Option(help="Dataset folder (folder pairs, MSD or nnU-Net raw layout).")],
    model: Annotated[str, typer.Option(help="Model name (see `samia models`).")],
    out: Annotated[Path, typer.Option(help="Results folder (re-running resumes it).")],
    strategy: Annotated[
        list[str] | None, typer.Option(help="Prompt strategy; repeat for several (see `samia strategies`).")
    ] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Weights file (required for SAM/MedSAM).")] = None,
    layout: Annotated[str, typer.Option(help="auto, folder, msd or nnunet.")] = "auto",
    modality: Annotated[str | None, typer.Option(help="Override the dataset's modality.")] = None,
    selection: Annotated[
        list[str] | None, typer.Option(help="Mask selection rule(s): oracle, predicted_iou, single (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    save_masks: Annotated[
        bool, typer.Option("--save-masks", help="Write every predicted mask under OUT/masks/.")
    ] = False,
    axis: Annotated[int, typer.Option(help="Volume axis to slice (0 = z).")] = 0,
    protocol: Annotated[
        str,
        typer.Option(
            help="Prompt rules: samia, or huang2024 (Huang et al.'s released code, exactly; fixes --min-area and --preset)."
        ),
    ] = "samia",
    input_pipeline: Annotated[
        str | None,
        typer.Option(help="Image/prompt pipeline: sam, litemedsam or medsam (default: the model's reference one)."),
    ] = None,
    min_area: Annotated[
        int | None,
        typer.Option(
            help="Skip (and count) objects under this many pixels on a slice (default: the protocol's, 50 or 51)."
        ),
    ] = None,
    connected_components: Annotated[
        bool, typer.Option("--connected-components", help="One object per connected component.")
    ] = False,
    preset: Annotated[str | None, typer.Option(help="Intensity preset (default: per modality).")] = None,
    decode_batch: Annotated[int, typer.Option(help="Prompts decoded at a time (bounds memory per image).")] = 32,
    nsd_tolerance: Annotated[float, typer.Option(help="NSD tolerance in mm.")] = 2.0,
    nsd_variant: Annotated[
        str, typer.Option(help="NSD: surfel (the published one, DeepMind surface-distance) or boundary_pixels.")
    ] = "surfel",
    cvpr24_nsd: Annotated[
        bool, typer.Option("--cvpr24-nsd", help="CVPR 2024 challenge rule: NSD = 0 where Dice <= 0.2.")
    ] = False,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    embedding_cache: Annotated[Path | None, typer.Option(help="Folder for an on-disk embedding cache.")] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Replay the prompts of this prompts.jsonl (strategies default to the file's).")
    ] = None,
    jitter_band: Annotated[
        list[str] | None, typer.Option(help="Jitter band LOW-HIGH; repeat (default 0-10, 10-20, 20-30).")
    ] = None,
    jitter_unit: Annotated[str, typer.Option(help="Jitter unit: px or percent (of the box size).")] = "px",
    jitter_repeats: Annotated[int, typer.Option(help="Random draws per jitter band.")] = 3,
    max_clicks: Annotated[int, typer.Option(help="Clicks of the clicks strategy.")] = 10,
    points_per_side: Annotated[int, typer.Option(help="Everything mode: grid points per side.")] = 32,
    points_per_batch: Annotated[int, typer.Option(help="Everything mode: points per decoder call.")] = 64,
    pred_iou_thresh: Annotated[float, typer.Option(help="Everything mode: predicted-IoU threshold.")] = 0.88,
    stability_score_thresh: Annotated[float, typer.Option(help="Everything mode: stability-score threshold.")] = 0.95,
    box_nms_thresh: Annotated[float, typer.Option(help="Everything mode: box NMS IoU threshold.")] = 0.7,
) -> None:
    """Evaluate MODEL on DATA with each STRATEGY; write OUT/results.parquet, summary.csv, errors.csv, config.yaml."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from samia.cli.paths import check_output_folder
    from samia.evaluate import SELECTIONS, EvaluationConfig, evaluate, headline

    check_output_folder(out)

    config = EvaluationConfig(
        data=str(data),
        out=str(out),
        model=model,
        strategies=list(strategy or []),
        checkpoint=None if checkpoint is None else str(checkpoint),
        layout=layout,
        modality=modality,
        selections=list(selection or SELECTIONS),
        seed=seed,
        limit=limit,
        save_masks=save_masks,
        axis=axis,
        protocol=protocol,
        input_pipeline=input_pipeline,
        min_area=min_area,
        connected_components=connected_components,
        preset=preset,
        nsd_tolerance_mm=nsd_tolerance,
        nsd_variant=nsd_variant,
        nsd_zero_at_dice=0.2 if cvpr24_nsd else None,
        decode_batch=decode_batch,
        device=device,
        embedding_cache_dir=None if embedding_cache is None else str(embedding_cache),
        prompts_file=None if prompts is None else str(prompts),
        jitter_unit=jitter_unit,
        jitter_repeats=jitter_repeats,
        max_clicks=max_clicks,
        points_per_side=points_per_side,
        points_per_batch=points_per_batch,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
        box_nms_thresh=box_nms_thresh,
        **({"jitter_bands": list(jitter_band)} if jitter_band else {}),
    )
    console = Console(stderr=True)
    columns = (
        TextColumn("[bold]evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=None)
        outcome = evaluate(
            config,
            on_progress=lambda case: progress.update(task, advance=1, description=case),
            on_case_total=lambda total: progress.update(task, total=total),
        )
    _print_outcome(Console(), outcome, out, headline(outcome.results))


def _print_outcome(console, outcome, out: Path, table_frame) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"samia evaluate: {len(outcome.results)} rows in {out / 'results.parquet'}")
    for column in table_frame.columns:
        table.add_column(str(column), justify="right" if table_frame[column].dtype.kind in "if" else "left")
    for _, row in table_frame.iterrows():
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    if not outcome.instances.empty:
        for row in outcome.instances.itertuples():
            console.print(
                f"everything mode, {row.model} on {row.dataset}: instance F1 {row.f1:.3f} "
                f"(precision {row.precision:.3f}, recall {row.recall:.3f}; no oracle)"
            )
    console.print(
        f"units evaluated now: {outcome.units_run}, already done: {outcome.units_skipped}, "
        f"objects skipped as too small: {outcome.skipped_small}, failures: {len(outcome.errors)}"
        + (f" (see {out / 'errors.csv'})" if len(outcome.errors) else "")
    )
