"""The configuration of a learning-curve study, dumped as ``study.yaml`` with its split."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from samia.data.settings import CaseSettings
from samia.errors import ConfigurationError
from samia.files import atomic_write_bytes
from samia.finetuning.config import DEFAULT_VAL_STRATEGIES, METHOD_NAMES, FinetuneConfig, TrainingSettings
from samia.models.settings import ModelSettings
from samia.prompts import STRATEGIES
from samia.samplers import SAMPLERS
from samia.settings_groups import SettingsGroup

DECODER_SUFFIX = "+decoder"
"""A study method ``NAME+decoder`` is method ``NAME`` with the mask decoder trained too."""

EXTENSIBLE = frozenset({"out", "device", "methods", "cases", "repeats"})
"""Options a study may change when it is run again into its folder: the split does not depend on
them, so the runs already done stay valid and the new ones are added."""

TRAINING_OPTIONS = frozenset(field.name for field in fields(TrainingSettings))
""":class:`~samia.finetuning.config.TrainingSettings` options a study may set for every run (``StudyConfig.training``)."""


@dataclass(frozen=True)
class StudyMethod:
    """One curve of a study: a fine-tuning method and whether the mask decoder trains with it.

    Attributes:
        label: ``NAME`` or ``NAME+decoder``; a bare name trains only that method's own weights.
        method: the :data:`samia.finetuning.config.METHOD_NAMES` entry.
        train_decoder: the mask decoder trains too (always for ``decoder`` and ``full``).
    """

    label: str
    method: str
    train_decoder: bool

    @classmethod
    def parse(cls, label: str) -> StudyMethod:
        """``"lora+decoder"`` -> ``StudyMethod("lora+decoder", "lora", True)``.

        Raises:
            ConfigurationError: an unknown method, or ``+decoder`` on ``decoder`` or ``full``.
        """
        name = label.removesuffix(DECODER_SUFFIX)
        explicit = name != label
        if name not in METHOD_NAMES:
            known = ", ".join(METHOD_NAMES)
            raise ConfigurationError(f"unknown --method {label!r}; known: {known}, each but decoder/full +decoder")
        if explicit and name in ("decoder", "full"):
            raise ConfigurationError(f"--method {label}: {name} trains the mask decoder anyway; write {name}")
        return cls(label, name, explicit or name in ("decoder", "full"))


@dataclass
class StudyConfig(SettingsGroup):
    """Everything that defines a learning-curve study (see :mod:`samia.study`).

    Attributes:
        data: dataset folder (any layout :func:`samia.data.build_manifest` reads).
        out: study folder.
        model: the base model.
        methods: curve labels (:class:`StudyMethod`), e.g. ``["decoder", "lora+decoder", "ssam"]``.
        cases: numbers of training cases, e.g. ``[1, 2, 4, 8]``; each run trains on the first
            ``n`` cases of its repeat's seeded order of the training pool.
        reading: how cases become 2D objects, as in ``samia evaluate`` and ``samia finetune``.
        repeats: seeded orders of the pool (runs per method and ``n``).
        strategies: ``samia.prompts`` strategies every model is evaluated with on the test cases;
            the static ones also select each run's best epoch on the validation cases (one-truth
            data; a multi-rater run's best epoch is its lowest validation GED).
        samplers: on multi-rater data, the :data:`samia.samplers.SAMPLERS` that score the
            zero-shot model and every deterministic method's runs on the test cases (a
            ``ua_adapter`` run is scored with its latent samples).
        samples: ``N`` of the ``jitter`` and ``flips`` samplers and of the latent samples.
        test_fraction: fraction of the cases (rounded, at least 1) held out for testing.
        val_cases: cases held out for validation (early stopping), shared by every run.
        seed: seed of the split, the orders and every run.
        training: the :class:`~samia.finetuning.config.TrainingSettings` options every run
            changes from their defaults (:data:`TRAINING_OPTIONS`: epochs, lr, prompts, ...).
        steps: when given, every run visits this many training cases whatever its ``n``: it trains
            ``ceil(steps / n)`` epochs without early stopping and keeps its best validation epoch,
            so a point with fewer cases is not also a point with less training. None = every run
            trains ``training["epochs"]`` epochs with its ``patience``.
    """

    data: str
    out: str
    model: ModelSettings
    methods: list[str]
    cases: list[int]
    reading: CaseSettings = field(default_factory=CaseSettings)
    repeats: int = 3
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_VAL_STRATEGIES))
    samplers: list[str] = field(default_factory=lambda: list(SAMPLERS))
    samples: int = 8
    test_fraction: float = 0.3
    val_cases: int = 2
    seed: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None

    def __post_init__(self) -> None:
        self.reading = self.reading.resolved(self.data)
        self.model = self.model.on_torch_if_auto()
        problems = []
        if not self.methods:
            problems.append("at least one --method is needed")
        if len(set(self.methods)) != len(self.methods):
            problems.append(f"--method repeated: {self.methods}")
        if not self.cases or any(n < 1 for n in self.cases):
            problems.append(f"--cases must be numbers >= 1, got {self.cases}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"--steps must be >= 1, got {self.steps}")
        if self.steps is not None and {"epochs", "patience"} & set(self.training):
            problems.append("--steps sets each run's epochs and turns early stopping off: give no epochs or patience")
        if self.repeats < 1 or self.val_cases < 1:
            problems.append("--repeats and --val-cases must be >= 1")
        if not 0.0 < self.test_fraction < 1.0:
            problems.append(f"--test-fraction must lie in (0, 1), got {self.test_fraction}")
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            problems.append(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
        elif not self.validation_strategies:
            problems.append("at least one --strategy must be a static prompt (box, point1, ...) to validate on")
        unknown_samplers = [s for s in self.samplers if s not in SAMPLERS]
        if unknown_samplers or not self.samplers:
            problems.append(f"unknown samplers {unknown_samplers}; known: {', '.join(SAMPLERS)}")
        if self.samples < 1:
            problems.append(f"--samples must be >= 1, got {self.samples}")
        extra = set(self.training) - TRAINING_OPTIONS
        if extra:
            problems.append(f"unknown training options {sorted(extra)}; known: {', '.join(sorted(TRAINING_OPTIONS))}")
        if problems:
            raise ConfigurationError("invalid study configuration: " + "; ".join(problems))
        self.cases = sorted(set(self.cases))
        for method in self.study_methods:
            self.run_config(method, ["case"], ["case"], "run", self.seed)  # every run's options are valid

    @property
    def study_methods(self) -> list[StudyMethod]:
        return [StudyMethod.parse(label) for label in self.methods]

    @property
    def validation_strategies(self) -> list[str]:
        return [s for s in self.strategies if STRATEGIES[s].kind == "static"]

    def run_config(
        self, method: StudyMethod, cases: list[str], val_cases: list[str], out: str, seed: int
    ) -> FinetuneConfig:
        """The :class:`FinetuneConfig` of one run: ``method`` on ``cases``, validated on ``val_cases``."""
        epochs = None if self.steps is None else math.ceil(self.steps / len(cases))
        budget = {} if epochs is None else {"epochs": epochs, "patience": epochs}
        return FinetuneConfig(
            data=self.data,
            out=out,
            model=self.model,
            method=method.method,
            reading=self.reading,
            training=TrainingSettings(**{**self.training, **budget}),
            train_decoder=method.train_decoder,
            cases=list(cases),
            val_cases=list(val_cases),
            val_strategies=self.validation_strategies,
            seed=seed,
        )

    def grown_from(self, previous: StudyConfig) -> StudyConfig:
        """This configuration over everything ``previous`` planned: the union of the methods
        (``previous``'s order first) and case counts, the larger repeat count. A re-run that asks
        for fewer runs keeps the study's record of all of them."""
        methods = list(previous.methods) + [m for m in self.methods if m not in previous.methods]
        cases = sorted(set(previous.cases) | set(self.cases))
        return replace(self, methods=methods, cases=cases, repeats=max(self.repeats, previous.repeats))

    def differences(self, other: StudyConfig) -> dict[str, tuple[Any, Any]]:
        """Options (flat names, other than :data:`EXTENSIBLE`) whose values differ: ``name -> (self, other)``."""
        mine, theirs = self.flat(), other.flat()
        return {k: (mine[k], theirs[k]) for k in mine if k not in EXTENSIBLE and mine[k] != theirs[k]}


def write_study_file(path: Path, config: StudyConfig, split: dict[str, Any]) -> None:
    """Dump ``config`` and ``split`` (:meth:`samia.study.plan.StudySplit.to_record`) as YAML."""
    document = {"config": config.to_dict(), "split": split}
    atomic_write_bytes(path, yaml.safe_dump(document, sort_keys=False).encode())


def read_study_file(path: Path) -> tuple[StudyConfig, dict[str, Any]]:
    """Inverse of :func:`write_study_file`: ``(config, split record)``.

    Raises:
        ConfigurationError: the file is not a study file.
    """
    try:
        document = yaml.safe_load(path.read_text())
        return StudyConfig.from_dict(document["config"]), document["split"]
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise ConfigurationError(f"{path} is not a samia study file ({error})") from None
