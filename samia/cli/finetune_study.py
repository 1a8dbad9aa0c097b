"""``samia finetune-study``: learning curves of fine-tuning methods on nested subsets of the cases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from samia.cli.options import (
    AdapterRatio,
    Axis,
    BoxJitter,
    Checkpoint,
    ConnectedComponents,
    Instances,
    KlWeight,
    LatentBlocks,
    LatentDim,
    Layout,
    LoraRank,
    Lr,
    MinArea,
    Modality,
    ModelName,
    ObjectsPerImage,
    Preset,
    PromptKinds,
)
from samia.models.catalogue import DEFAULT_MODEL


def finetune_study_command(
    data: Annotated[
        Path,
        typer.Option(
            help="Dataset folder (folder pairs, MSD or nnU-Net raw layout; or a multi-rater layout, scored by GED).",
            metavar="DIR",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Study folder: study.yaml, zero_shot/, runs/, curve.csv, runs.csv, learning_curve.png "
            "(re-running resumes it).",
            metavar="DIR",
        ),
    ],
    method: Annotated[
        list[str],
        typer.Option(
            help="A curve: decoder, full, lora, adapter or ssam, or lora/adapter/ssam+decoder (the mask decoder "
            "trains too), ua_adapter(+decoder) on multi-rater data; repeat.",
            metavar="NAME",
        ),
    ],
    cases: Annotated[list[int], typer.Option(help="Training cases of a point of the curve; repeat.", metavar="N")],
    repeats: Annotated[int, typer.Option(help="Seeded case orders (runs per method and N).", metavar="N")] = 3,
    strategy: Annotated[
        list[str] | None,
        typer.Option(help="Test prompt strategy; repeat (default: box and point1).", metavar="NAME"),
    ] = None,
    sampler: Annotated[
        list[str] | None,
        typer.Option(
            help="Multi-rater data: sampler scoring the zero-shot and deterministic models (single, multimask, "
            "jitter, flips); repeat (default: all). ua_adapter runs sample their latent code.",
            metavar="NAME",
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Multi-rater data: samples of jitter, flips and the latent code.", metavar="N")
    ] = 8,
    test_fraction: Annotated[
        float, typer.Option(help="Fraction of the cases held out for testing.", metavar="NUMBER")
    ] = 0.3,
    val_cases: Annotated[
        int, typer.Option(help="Cases held out for validation (early stopping) of every run.", metavar="N")
    ] = 2,
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Training cases every run visits: ceil(STEPS / N) epochs, no early stopping, best validation "
            "epoch kept (instead of --epochs/--patience).",
            metavar="N",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs of a run (without --steps).", metavar="N")] = 20,
    patience: Annotated[
        int,
        typer.Option(
            help="Stop a run after this many epochs without a better validation Dice (without --steps).", metavar="N"
        ),
    ] = 5,
    lr: Lr = 1e-4,
    objects_per_image: ObjectsPerImage = 8,
    prompt: PromptKinds = None,
    box_jitter: BoxJitter = 20.0,
    lora_rank: LoraRank = 4,
    adapter_ratio: AdapterRatio = 0.25,
    latent_dim: LatentDim = 6,
    latent_blocks: LatentBlocks = 2,
    kl_weight: KlWeight = 0.0005,
    seed: Annotated[int, typer.Option(help="Seed of the split, the case orders and the runs.", metavar="N")] = 0,
    layout: Layout = "auto",
    modality: Modality = None,
    axis: Axis = 0,
    min_area: MinArea = None,
    connected_components: ConnectedComponents = False,
    instances: Instances = None,
    preset: Preset = None,
    device: Annotated[str, typer.Option(help="torch device.", metavar="NAME")] = "cpu",
) -> None:
    """Train every METHOD on nested subsets of N cases, test each model on the same held-out cases, and
    write the learning curves (OUT/curve.csv, OUT/learning_curve.png); `samia report OUT` shows them."""
    from samia.cli.paths import check_output_folder
    from samia.data.raters import rater_layout_of
    from samia.data.settings import CaseSettings
    from samia.errors import ConfigurationError
    from samia.evaluation.summary import text_table
    from samia.finetuning.config import DEFAULT_PROMPT_KINDS, DEFAULT_VAL_STRATEGIES
    from samia.models.settings import ModelSettings
    from samia.samplers import SAMPLERS
    from samia.study import StudyConfig, run_study
    from samia.study.curves import headline_curve

    check_output_folder(out)
    multi_rater = rater_layout_of(data, layout) is not None
    if sampler and not multi_rater:
        raise ConfigurationError(
            f"--sampler scores multi-rater data; {data} has one mask per object (a study of it is scored by --strategy)"
        )
    if strategy and multi_rater:
        raise ConfigurationError(
            f"--strategy scores one-truth data; {data} has several raters' masks (a study of it is scored by --sampler)"
        )
    config = StudyConfig(
        str(data),
        str(out),
        ModelSettings(model, None if checkpoint is None else str(checkpoint), device),
        list(method),
        list(cases),
        reading=CaseSettings(layout, modality, axis, min_area, connected_components, instances, preset),
        repeats=repeats,
        strategies=list(strategy or DEFAULT_VAL_STRATEGIES),
        samplers=list(sampler or SAMPLERS),
        samples=samples,
        test_fraction=test_fraction,
        val_cases=val_cases,
        seed=seed,
        training={
            **({"epochs": epochs, "patience": patience} if steps is None else {}),
            "lr": lr,
            "objects_per_image": objects_per_image,
            "prompt_kinds": list(prompt or DEFAULT_PROMPT_KINDS),
            "box_jitter_px": box_jitter,
            "lora_rank": lora_rank,
            "adapter_ratio": adapter_ratio,
            "latent_dim": latent_dim,
            "latent_blocks": latent_blocks,
            "kl_weight": kl_weight,
            "val_samples": samples,
        },
        steps=steps,
    )
    outcome = run_study(config, _Lines())
    failures = f", {outcome.failed} failed (see {out / 'errors.csv'})" if outcome.failed else ""
    typer.echo(f"samia finetune-study: {outcome.done} runs done, {outcome.skipped} done before{failures}")
    if not outcome.curve.empty:
        typer.echo(text_table(headline_curve(outcome.curve, outcome.scoring), keys=3))
    typer.echo(f"learning curves: {out / 'curve.csv'}, {out / 'learning_curve.png'}")


class _Lines:
    """One line per run on stderr (:class:`samia.study.StudyProgress`)."""

    def started(self, name: str, index: int, total: int) -> None:
        typer.echo(f"[{index}/{total}] {name} ...", err=True)

    def finished(self, name: str, record: dict[str, Any], scores: str) -> None:
        trained = (
            f" (best epoch {record['best_epoch']}, {record['train_seconds']:.0f} s training)"
            if "best_epoch" in record
            else ""
        )
        typer.echo(f"    {name}: {scores}{trained}", err=True)

    def failed(self, name: str, message: str) -> None:
        typer.secho(f"    {name} failed: {message}", fg=typer.colors.RED, err=True)
