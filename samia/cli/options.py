"""Options that several commands share, as typer ``Annotated`` types (one help text each).

Dataset options: ``samia evaluate``, ``samia finetune`` and ``samia finetune-study``; training
options: ``samia finetune`` and ``samia finetune-study``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samia.cli.choices import MODALITY_HELP, PRESET_HELP

ModelName = Annotated[str, typer.Option("--model", help="Model name (see `samia models`).", metavar="NAME")]
"""``--model`` of every command that runs a model; its default is :data:`samia.models.catalogue.DEFAULT_MODEL`."""
Checkpoint = Annotated[
    Path | None, typer.Option(help="Weights file, for models that need one (see `samia models`).", metavar="FILE")
]
Layout = Annotated[
    str,
    typer.Option(
        help="auto, folder, msd, nnunet, cvpr24, or a multi-rater one: rater_folders, rater_suffix, rater_stack.",
        metavar="NAME",
    ),
]
Modality = Annotated[str | None, typer.Option(help=MODALITY_HELP, metavar="NAME")]
Axis = Annotated[int, typer.Option(help="Volume axis to slice (0 = z).", metavar="N")]
MinArea = Annotated[
    int | None,
    typer.Option(help="Skip (and count) objects under this many pixels on a slice (default 50).", metavar="N"),
]
ConnectedComponents = Annotated[
    bool, typer.Option("--connected-components", help="One object per connected component.", metavar="")
]
Instances = Annotated[
    str | None,
    typer.Option(
        help="The masks number the objects of this one class (an instance map, e.g. nuclei 1..N): "
        'each value is one object of CLASS. Default: dataset.json\'s "instances", else each value is a class.',
        metavar="CLASS",
    ),
]
Preset = Annotated[str | None, typer.Option(help=PRESET_HELP, metavar="NAME")]

Lr = Annotated[float, typer.Option(help="AdamW learning rate.", metavar="NUMBER")]
ObjectsPerImage = Annotated[int, typer.Option(help="At most this many objects of an image per step.", metavar="N")]
PromptKinds = Annotated[
    list[str] | None,
    typer.Option(
        help="Training prompt kind: box, points, box_points; repeat to mix (default: box and points).",
        metavar="NAME",
    ),
]
BoxJitter = Annotated[
    float, typer.Option(help="Largest random shift of each training box coordinate, pixels.", metavar="NUMBER")
]
LoraRank = Annotated[int, typer.Option(help="LoRA rank (--method lora).", metavar="N")]
AdapterRatio = Annotated[
    float, typer.Option(help="Adapter bottleneck width / block width (--method adapter).", metavar="NUMBER")
]
LatentDim = Annotated[int, typer.Option(help="Size of the latent code (--method ua_adapter).", metavar="N")]
LatentBlocks = Annotated[
    int,
    typer.Option(help="Last encoder blocks with conditioned adapters (ua_adapter; 0 = every block).", metavar="N"),
]
KlWeight = Annotated[float, typer.Option(help="Weight of the KL term of the ua_adapter loss.", metavar="NUMBER")]
