"""``samia finetune``: adapt a model to a small dataset; resumable, with a training curve."""

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


def finetune_command(
    data: Annotated[
        Path,
        typer.Option(
            help="Training dataset folder (folder pairs, MSD, nnU-Net raw, or a multi-rater layout).", metavar="DIR"
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Run folder: best.pt, last.pt, history.csv, curve.png, finetune.yaml (re-running resumes it).",
            metavar="DIR",
        ),
    ],
    method: Annotated[
        str, typer.Option(help="decoder, full, lora, adapter, ssam or ua_adapter (multi-rater data).", metavar="NAME")
    ] = "decoder",
    val: Annotated[
        Path | None,
        typer.Option(help="Validation dataset folder (default: hold out --val-fraction of the cases).", metavar="DIR"),
    ] = None,
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    val_fraction: Annotated[
        float, typer.Option(help="Fraction of the cases held out for validation, split by case.", metavar="NUMBER")
    ] = 0.2,
    case: Annotated[
        list[str] | None,
        typer.Option(help="Train on this case id of --data only; repeat (default: every case).", metavar="ID"),
    ] = None,
    val_case: Annotated[
        list[str] | None,
        typer.Option(
            help="Validate on this case id (of --val, else of --data; instead of --val-fraction); repeat.",
            metavar="ID",
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Maximum number of epochs.", metavar="N")] = 20,
    patience: Annotated[
        int, typer.Option(help="Stop after this many epochs without a better validation Dice.", metavar="N")
    ] = 5,
    lr: Lr = 1e-4,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.", metavar="NUMBER")] = 0.01,
    images_per_step: Annotated[int, typer.Option(help="Images per optimizer step and process.", metavar="N")] = 1,
    objects_per_image: ObjectsPerImage = 8,
    prompt: PromptKinds = None,
    box_jitter: BoxJitter = 20.0,
    max_points: Annotated[int, typer.Option(help="Positive clicks per points prompt: 1..N.", metavar="N")] = 3,
    max_negatives: Annotated[
        int, typer.Option(help="Negative clicks per points prompt: 0..N, near the object.", metavar="N")
    ] = 2,
    negative_margin: Annotated[
        int, typer.Option(help="Negative clicks lie within this many pixels of the object.", metavar="N")
    ] = 10,
    correction_clicks: Annotated[
        int, typer.Option(help="Extra rounds with a click on the error region.", metavar="N")
    ] = 1,
    val_strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Prompt strategy scored on the validation set; repeat (default: box and point1).", metavar="NAME"
        ),
    ] = None,
    train_decoder: Annotated[
        bool | None,
        typer.Option(
            "--train-decoder/--frozen-decoder",
            help="Train the mask decoder too, or keep it frozen (lora, adapter, ssam; default: trained for lora "
            "and adapter, SAMed's recipe, frozen for ssam).",
            show_default=False,
        ),
    ] = None,
    lora_rank: LoraRank = 4,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha (--method lora).", metavar="NUMBER")] = 8.0,
    adapter_ratio: AdapterRatio = 0.25,
    latent_dim: LatentDim = 6,
    latent_blocks: LatentBlocks = 2,
    kl_weight: KlWeight = 0.0005,
    val_samples: Annotated[
        int, typer.Option(help="Samples per validation object (ua_adapter, multi-rater data).", metavar="N")
    ] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the split, the shuffles and the prompts.", metavar="N")] = 0,
    layout: Layout = "auto",
    modality: Modality = None,
    axis: Axis = 0,
    min_area: MinArea = None,
    connected_components: ConnectedComponents = False,
    instances: Instances = None,
    preset: Preset = None,
    device: Annotated[
        str, typer.Option(help="torch device (cuda: one GPU per process under torchrun).", metavar="NAME")
    ] = "cpu",
) -> None:
    """Fine-tune MODEL on DATA with METHOD; the best checkpoint loads with `--model MODEL --checkpoint OUT/best.pt`."""
    from rich.console import Console

    from samia.cli.paths import check_output_folder
    from samia.data.settings import CaseSettings
    from samia.finetuning import FinetuneConfig, TrainingSettings, finetune
    from samia.finetuning.config import DEFAULT_VAL_STRATEGIES
    from samia.models.settings import ModelSettings

    check_output_folder(out)

    config = FinetuneConfig(
        str(data),
        str(out),
        ModelSettings(model, None if checkpoint is None else str(checkpoint), device),
        method,
        reading=CaseSettings(layout, modality, axis, min_area, connected_components, instances, preset),
        training=TrainingSettings(
            epochs=epochs,
            patience=patience,
            lr=lr,
            weight_decay=weight_decay,
            images_per_step=images_per_step,
            objects_per_image=objects_per_image,
            prompt_kinds=list(prompt or TrainingSettings().prompt_kinds),
            box_jitter_px=box_jitter,
            max_positive_points=max_points,
            max_negative_points=max_negatives,
            negative_margin_px=negative_margin,
            correction_clicks=correction_clicks,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            adapter_ratio=adapter_ratio,
            latent_dim=latent_dim,
            latent_blocks=latent_blocks,
            kl_weight=kl_weight,
            val_samples=val_samples,
        ),
        val=None if val is None else str(val),
        cases=case,
        val_cases=val_case,
        val_fraction=val_fraction,
        val_strategies=list(val_strategy or DEFAULT_VAL_STRATEGIES),
        train_decoder=train_decoder,
        seed=seed,
    )
    console = Console(stderr=True)
    with _ProgressBars(console) as progress:
        outcome = finetune(config, progress)
    if outcome.rank == 0:
        counts = outcome.parameters
        typer.echo(
            f"{method} trained {counts['trainable_parameters']:,} of {counts['total_parameters']:,} parameters "
            f"({100 * counts['trainable_share']:.2f} %)"
        )
        typer.echo(
            _split_line("trained on", outcome.train_cases) + "; " + _split_line("validated on", outcome.val_cases)
        )
        typer.echo(
            f"best epoch {outcome.best_epoch} (0 = the base model"
            + (", the lowest validation GED against the raters)" if "val_ged" in outcome.history else ")")
            + f", validation Dice {outcome.best_val_dice:.4f}"
            + (" (stopped early)" if outcome.stopped_early else "")
        )
        from samia.finetuning.history import before_and_after

        lines, worse = before_and_after(outcome.history, outcome.best_epoch)
        typer.echo("validation, single-mask Dice of the base model -> the kept checkpoint:\n" + "\n".join(lines))
        if worse:
            typer.echo(f"WORSE after fine-tuning: {', '.join(worse)} (see the lines above)")
        typer.echo(f"use it: samia evaluate --model {model} --checkpoint {outcome.best_path} ...")


def _split_line(what: str, cases: tuple[str, ...], shown: int = 8) -> str:
    """``"trained on 5 cases (a, b, ...)"``."""
    names = ", ".join(cases[:shown]) + (f", ... ({len(cases) - shown} more)" if len(cases) > shown else "")
    return f"{what} {len(cases)} case{'s' if len(cases) != 1 else ''} ({names})"


class _ProgressBars:
    """Rich progress bars for :class:`samia.finetuning.FinetuneProgress`: one bar per epoch, one line per validation."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}, {task.fields[rate]:.1f} samples/s"),
            TimeElapsedColumn(),
        )
        self.bars = Progress(*columns, console=console, transient=False)
        self.task: Any = None

    def __enter__(self) -> _ProgressBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bars.__exit__(*exc)

    def start_epoch(self, epoch: int, steps: int) -> None:
        self.task = self.bars.add_task("", total=steps, epoch=epoch, loss=float("nan"), rate=0.0)

    def step(self, loss: float, samples_per_s: float) -> None:
        self.bars.update(self.task, advance=1, loss=loss, rate=samples_per_s)

    def end_epoch(self, record: dict[str, Any]) -> None:
        strategies = ", ".join(
            f"{k.removeprefix('val_dice_')} {v:.3f}" for k, v in record.items() if k.startswith("val_dice_")
        )
        label = "base model" if record["epoch"] == 0 else f"epoch {record['epoch']}"
        best = " (best)" if record["best"] else ""
        self.bars.console.print(f"{label}: validation Dice {record['val_dice']:.4f} ({strategies}){best}")
