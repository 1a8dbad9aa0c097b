"""The configuration of a fine-tuning run, dumped as ``finetune.yaml`` next to its checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from samia.data.settings import CaseSettings
from samia.errors import ConfigurationError
from samia.files import atomic_write_bytes
from samia.models.settings import ModelSettings
from samia.prompts import STRATEGIES
from samia.settings_groups import SettingsGroup

METHOD_NAMES = ("decoder", "full", "lora", "adapter", "ssam", "ua_adapter")
"""What trains (see :mod:`samia.finetuning.methods`): ``decoder`` = the mask decoder on cached
embeddings (Huang et al.); ``full`` = image encoder + mask decoder (MedSAM); ``lora`` = LoRA
adapters on the image encoder's attention; ``adapter`` = bottleneck adapters in the encoder blocks;
``ssam`` = S-SAM's singular-value scale and shift of the encoder blocks' linear layers, plus their
LayerNorms; ``ua_adapter`` = the Uncertainty-aware Adapter (adapters conditioned on a latent code of a
conditional VAE, trained on several raters' masks; :mod:`samia.models.ua_adapter`)."""

PROMPT_KINDS = ("box", "points", "box_points")
"""Training prompt kinds (see :mod:`samia.finetuning.training_prompts`)."""

DEFAULT_PROMPT_KINDS = ("box", "points")
"""The prompt kinds a model is trained with unless told."""

DEFAULT_VAL_STRATEGIES = ("box", "point1")
"""The strategies a run is validated with (and a learning-curve study tests with) unless told."""

RESUME_INSENSITIVE = frozenset({"out", "device", "epochs", "embedding_cache_dir"})
"""Options (flat names) that may change when a run is resumed (``epochs`` may be raised to train longer)."""

DECODER_TRAINS_BY_DEFAULT = frozenset({"lora", "adapter", "ua_adapter"})
"""Methods whose runs train the mask decoder too unless told otherwise (``train_decoder=None``):
LoRA and adapters alone barely move LiteMedSAM, with the decoder they learn (docs/guides/finetune.md, "Which
method, how many cases")."""


@dataclass(frozen=True)
class TrainingSettings(SettingsGroup):
    """How a fine-tuning run trains: optimisation, training prompts and the methods' sizes.

    Attributes:
        epochs: maximum number of passes over the training images.
        patience: stop after this many epochs without a better validation Dice.
        lr, weight_decay: AdamW learning rate and decoupled weight decay.
        images_per_step: images whose gradients are accumulated per optimizer step, per process
            (the effective batch is ``images_per_step x`` the number of processes).
        objects_per_image: at most this many objects of an image are prompted per step (a seeded
            random subset when an image holds more).
        prompt_kinds: training prompts drawn per object, some of :data:`PROMPT_KINDS`.
        box_jitter_px: boxes are the tight box with each side moved by up to this many pixels.
        max_positive_points: point prompts get 1..max positive clicks inside the object.
        max_negative_points: and 0..max negative clicks in the background ring around it.
        negative_margin_px: width of that ring, pixels.
        correction_clicks: extra decoder rounds per step, each adding one click drawn from the
            error region of the previous round (positive on a miss, negative on a false alarm).
        lora_rank, lora_alpha: LoRA rank and scaling numerator (``lora`` method).
        adapter_ratio: bottleneck width as a fraction of the block width (``adapter``,
            ``ua_adapter``).
        latent_dim: size of the latent code (``ua_adapter``).
        latent_blocks: the last this many encoder blocks carry conditioned adapters (``ua_adapter``;
            0 = every block, UA-SAM's choice: slower, the frozen part before them cannot be cached).
        kl_weight: weight of ``KL(posterior || prior)`` in the ``ua_adapter`` loss (the ELBO's beta).
            Small, because the mask loss is a mean over the low-resolution pixels where the ELBO
            sums over them: 0.0005 is the setting ``benchmarks/ua_adapter.py`` measures; runs at
            0.01 (before the decoder's adapters and the masked pooling) ended with the posterior
            collapsed onto the prior.
        val_samples: samples per validation object of a multi-rater run (``ua_adapter``; the
            deterministic methods give one).
    """

    epochs: int = 20
    patience: int = 5
    lr: float = 1e-4
    weight_decay: float = 0.01
    images_per_step: int = 1
    objects_per_image: int = 8
    prompt_kinds: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPT_KINDS))
    box_jitter_px: float = 20.0
    max_positive_points: int = 3
    max_negative_points: int = 2
    negative_margin_px: int = 10
    correction_clicks: int = 1
    lora_rank: int = 4
    lora_alpha: float = 8.0
    adapter_ratio: float = 0.25
    latent_dim: int = 6
    latent_blocks: int = 2
    kl_weight: float = 0.0005
    val_samples: int = 8

    def __post_init__(self) -> None:
        problems = []
        unknown = [k for k in self.prompt_kinds if k not in PROMPT_KINDS]
        if unknown or not self.prompt_kinds:
            problems.append(f"prompt kinds must be some of {', '.join(PROMPT_KINDS)}, got {self.prompt_kinds}")
        positive = ("epochs", "patience", "images_per_step", "objects_per_image", "max_positive_points", "lora_rank")
        for name in (*positive, "latent_dim", "val_samples"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_negative_points", "negative_margin_px", "correction_clicks", "latent_blocks", "kl_weight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.box_jitter_px < 0 or self.lr <= 0 or self.weight_decay < 0 or self.adapter_ratio <= 0:
            problems.append("box jitter, weight decay must be >= 0; lr and adapter ratio > 0")
        if problems:
            raise ConfigurationError("invalid training settings: " + "; ".join(problems))


@dataclass
class FinetuneConfig(SettingsGroup):
    """Everything that defines a fine-tuning run (``finetune.yaml`` nests its settings groups).

    Attributes:
        data: training dataset folder (any layout :func:`samia.data.build_manifest` reads).
        out: run folder (``finetune.yaml``, ``last.pt``, ``best.pt``, ``history.csv``, ``curve.png``).
        model: the base model (its ``backend`` must be ``torch``, which ``auto`` means here: exported
            graphs do not train).
        method: one of :data:`METHOD_NAMES`.
        reading: how cases become 2D objects, exactly as in ``samia evaluate``.
        training: optimisation, training prompts, method sizes.
        val: validation dataset folder; None = hold out ``val_fraction`` of the training cases
            (or take ``val_cases`` from ``data``).
        cases: train on these case ids of ``data`` only; None = every case not held out.
        val_cases: validate on these case ids (of ``val``, else of ``data``); None = every case of
            ``val``, or the ``val_fraction`` split.
        val_fraction: fraction of the cases (rounded, at least one) held out for validation when
            ``val`` is None. Splits are by case, never by slice.
        val_strategies: ``samia.prompts`` strategies whose mean single-mask Dice on the validation
            images selects the best checkpoint.
        train_decoder: the mask decoder trains too (``lora``, ``adapter``, ``ssam``; ``decoder`` and
            ``full`` train it anyway); None = the method's default (True for
            :data:`DECODER_TRAINS_BY_DEFAULT`), resolved when the config is made.
        embedding_cache_dir: on-disk cache of the base model's embeddings (``decoder`` method);
            None = ``out/embeddings``. Runs of one base model may share one (keys hash the weights
            and the pixels).
        seed: seed of the split, the shuffles and every prompt (per epoch and image).
    """

    data: str
    out: str
    model: ModelSettings
    method: str = "decoder"
    reading: CaseSettings = field(default_factory=CaseSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    val: str | None = None
    cases: list[str] | None = None
    val_cases: list[str] | None = None
    val_fraction: float = 0.2
    val_strategies: list[str] = field(default_factory=lambda: list(DEFAULT_VAL_STRATEGIES))
    train_decoder: bool | None = None
    seed: int = 0
    embedding_cache_dir: str | None = None

    def __post_init__(self) -> None:
        self.reading = self.reading.resolved(self.data)
        self.model = self.model.on_torch_if_auto()
        if self.train_decoder is None:
            self.train_decoder = self.method in DECODER_TRAINS_BY_DEFAULT
        problems = []
        if self.method not in METHOD_NAMES:
            problems.append(f"unknown method {self.method!r}; known: {', '.join(METHOD_NAMES)}")
        if self.model.backend != "torch":
            problems.append(f"models train on the torch backend, not {self.model.backend}")
        if not self.val_strategies:
            problems.append("at least one validation strategy is needed")
        problems.extend(_validation_strategy_problems(self.val_strategies))
        if not 0.0 < self.val_fraction < 1.0:
            problems.append(f"--val-fraction must lie in (0, 1), got {self.val_fraction}")
        for name in ("cases", "val_cases"):
            if getattr(self, name) is not None and not getattr(self, name):
                problems.append(f"{name} must name at least one case when given")
        if problems:
            raise ConfigurationError("invalid fine-tuning configuration: " + "; ".join(problems))

    def differences(self, other: FinetuneConfig) -> dict[str, tuple[Any, Any]]:
        """Options (flat names, other than :data:`RESUME_INSENSITIVE`) whose values differ:
        ``name -> (self, other)``."""
        mine, theirs = self.flat(), other.flat()
        return {k: (mine[k], theirs[k]) for k in mine if k not in RESUME_INSENSITIVE and mine[k] != theirs[k]}


def _validation_strategy_problems(names: list[str]) -> list[str]:
    """Validation scores static prompts only: clicks and everything mode are refused here, not mid-run."""
    problems = []
    for name in names:
        strategy = STRATEGIES.get(name)
        if strategy is None:
            problems.append(f"unknown validation strategy {name!r}; known: {', '.join(STRATEGIES)}")
        elif strategy.kind != "static":
            static = ", ".join(s.name for s in STRATEGIES.values() if s.kind == "static")
            problems.append(f"--val-strategy {name} is not a static prompt strategy; choose from {static}")
    return problems


def write_run_config(path: Path, config: FinetuneConfig, provenance: dict[str, Any]) -> None:
    """Dump ``config`` and ``provenance`` (base weights hash, data hashes, split, ...) as YAML."""
    document = {"config": config.to_dict(), "provenance": provenance}
    atomic_write_bytes(path, yaml.safe_dump(document, sort_keys=False).encode())


def read_run_config(path: Path) -> tuple[FinetuneConfig, dict[str, Any]]:
    """Inverse of :func:`write_run_config`: ``(config, provenance)``."""
    document = yaml.safe_load(path.read_text())
    return FinetuneConfig.from_dict(document["config"]), document.get("provenance", {})


def check_run_folder(out: Path, config: FinetuneConfig, provenance: dict[str, Any]) -> None:
    """Refuse to resume a run folder (``out/finetune.yaml``) of another configuration, base model
    or data (``provenance``'s ``base_weights_sha256``, ``train_data_sha256``, ``val_data_sha256``).

    Raises:
        ConfigurationError: naming every difference.
    """
    path = out / "finetune.yaml"
    if not path.is_file():
        return
    previous, recorded = read_run_config(path)
    differences = previous.differences(config)
    for key in ("base_weights_sha256", "train_data_sha256", "val_data_sha256"):
        if recorded.get(key) != provenance[key]:
            differences[key] = (recorded.get(key), provenance[key])
    if differences:
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in differences.items())
        raise ConfigurationError(f"{out} holds a different fine-tuning run ({listed}); use another --out folder")
