"""The configuration of an evaluation run, dumped as ``config.yaml`` next to its results."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from samia.auto import EverythingSettings
from samia.data.settings import CaseSettings
from samia.errors import ConfigurationError
from samia.evaluation.folders import is_uri
from samia.metrics.settings import SurfaceSettings
from samia.models.settings import ModelSettings
from samia.prompts.settings import PromptSettings
from samia.selection import SELECTIONS, Selection
from samia.settings_groups import SettingsGroup

RESUME_INSENSITIVE = frozenset({"limit", "cases", "device", "save_masks", "embedding_cache_dir", "out", "decode_batch"})
"""Options (flat names) that may change between a run and its resumption without mixing incomparable rows."""

NOT_A_CONDITION = RESUME_INSENSITIVE | {"data", "model", "checkpoint", "strategies", "selections", "layout"}
"""Options that say which rows a run has, not how they were measured (see :meth:`EvaluationConfig.condition`)."""


@dataclass
class EvaluationConfig(SettingsGroup):
    """Everything that defines an evaluation run: its own options and the settings groups of the
    packages it drives (see :mod:`samia.settings_groups`; ``config.yaml`` nests them).

    Attributes:
        data: dataset root folder (a layout ``samia.data.build_manifest`` understands).
        out: results folder, or a filesystem URI.
        model: the model and how it runs.
        strategies: prompt strategy names (``samia.prompts.STRATEGIES``), each run on every object.
        reading: how cases become objects (``min_area`` and ``preset`` filled from the protocol).
        prompting: the prompt protocol and the strategies' parameters.
        surface: the NSD tolerance and rule.
        everything: everything-mode settings.
        selections: mask selection rules to report (subset of :data:`SELECTIONS`).
        seed: seed of every random choice (per object, order-independent).
        limit: evaluate only the first ``limit`` cases of the manifest.
        cases: evaluate only these case ids (before ``limit``); None = every case.
        save_masks: write each predicted mask under ``out/masks/``.
        embedding_cache_dir: optional folder for an on-disk embedding cache.
        instance_iou: IoU at which a generated mask counts as finding an object (everything F1).
        prompts_file: replay the prompts of this ``prompts.jsonl`` instead of generating them.
        decode_batch: prompts decoded (and objects click-simulated) at a time; bounds memory per
            image whatever its number of objects and prompt variants.
    """

    data: str
    out: str
    model: ModelSettings
    strategies: list[str]
    reading: CaseSettings = field(default_factory=CaseSettings)
    prompting: PromptSettings = field(default_factory=PromptSettings)
    surface: SurfaceSettings = field(default_factory=SurfaceSettings)
    everything: EverythingSettings = field(default_factory=EverythingSettings)
    selections: list[Selection] = field(default_factory=lambda: list(SELECTIONS))
    seed: int = 0
    limit: int | None = None
    cases: list[str] | None = None
    save_masks: bool = False
    embedding_cache_dir: str | None = None
    instance_iou: float = 0.5
    prompts_file: str | None = None
    decode_batch: int = 32

    def __post_init__(self) -> None:
        if not self.strategies and self.prompts_file is None:
            raise ConfigurationError("at least one --strategy (or a --prompts file) is needed")
        unknown = [s for s in self.selections if s not in SELECTIONS]
        if unknown or not self.selections:
            raise ConfigurationError(f"unknown selection rule(s) {unknown}; known: {', '.join(SELECTIONS)}")
        if self.decode_batch < 1:
            raise ConfigurationError("--decode-batch must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigurationError("--limit must be >= 1")
        if self.cases is not None and not self.cases:
            raise ConfigurationError("--case must name a case when given")
        self.reading = self._protocol_reading().resolved(self.data)
        self._check_out_is_outside_the_data()

    def _check_out_is_outside_the_data(self) -> None:
        """Results written into the dataset (``--save-masks`` masks/ folders) would become data; masks
        are image files written where the results folder is a local (or mounted) folder."""
        if is_uri(self.out):
            if self.save_masks:
                raise ConfigurationError(f"--save-masks needs --out on a local or mounted filesystem, not {self.out}")
            return
        data, out = Path(self.data).resolve(), Path(self.out).resolve()
        if out == data or data in out.parents:
            raise ConfigurationError(
                f"--out {self.out} lies inside the dataset folder {self.data}; choose a folder outside it"
            )

    def _protocol_reading(self) -> CaseSettings:
        """``reading`` with ``min_area`` and ``preset`` from the protocol; values that contradict a
        protocol that fixes them are refused (``huang2024`` is exact or it is not ``huang2024``)."""
        rules, reading = self.prompting.rules, self.reading
        if rules.name == "samia":
            return replace(reading, min_area=rules.min_area if reading.min_area is None else reading.min_area)
        fixed = {"min_area": rules.min_area, "preset": rules.preset, "connected_components": False}
        contradicted = [
            f"{name}={getattr(reading, name)!r}"
            for name, value in fixed.items()
            if getattr(reading, name) not in (None, value)
        ]
        if contradicted:
            raise ConfigurationError(
                f"the {rules.name} protocol fixes {', '.join(f'{k}={v!r}' for k, v in fixed.items())}; "
                f"got {', '.join(contradicted)}: drop them, or use --protocol samia"
            )
        return replace(reading, min_area=rules.min_area, preset=rules.preset)

    def comparable(self) -> dict[str, Any]:
        """The options by flat name as a resumption compares them: the data folder resolved,
        strategies and selections as sets (their order does not change the rows)."""
        values = self.flat()
        values["data"] = str(Path(values["data"]).resolve())
        values["strategies"] = sorted(values["strategies"])
        values["selections"] = sorted(values["selections"])
        return values

    def condition(self) -> dict[str, Any]:
        """The options that change what a row measures (preset, protocol, seed, NSD rule, ...): two
        runs of one model whose conditions differ are two arms to compare, not one to pool."""
        return {k: v for k, v in self.comparable().items() if k not in NOT_A_CONDITION}

    def differences(self, other: EvaluationConfig) -> dict[str, tuple[Any, Any]]:
        """Options (other than :data:`RESUME_INSENSITIVE`) whose values differ: ``name -> (self, other)``,
        compared as :meth:`comparable` gives them."""
        mine, theirs = self.comparable(), other.comparable()
        return {k: (mine[k], theirs[k]) for k in mine if k not in RESUME_INSENSITIVE and mine[k] != theirs[k]}


def run_document(config: EvaluationConfig, provenance: dict[str, Any]) -> bytes:
    """``config`` and ``provenance`` (samia version, weights hash, ...) as the YAML of ``config.yaml``."""
    document = {"config": config.to_dict(), "provenance": provenance}
    return yaml.safe_dump(document, sort_keys=False).encode()


def parse_run_document(data: bytes, where: str) -> tuple[EvaluationConfig, dict[str, Any]]:
    """``(config, provenance)`` of the bytes of a ``config.yaml`` read from ``where``.

    Raises:
        ConfigurationError: the file is not YAML, or not a samia run configuration (one line naming
            ``where``).
    """
    try:
        document = yaml.safe_load(data.decode("utf-8", errors="strict"))
        if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
            raise ValueError("no 'config' mapping")
        return EvaluationConfig.from_dict(document["config"]), dict(document.get("provenance") or {})
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError, ConfigurationError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigurationError(f"{where} is corrupt, not a samia run configuration ({reason})") from None


def read_run_document(path: Path) -> tuple[EvaluationConfig, dict[str, Any]]:
    """``(config, provenance)`` of a ``config.yaml`` file (see :func:`parse_run_document`)."""
    return parse_run_document(Path(path).read_bytes(), str(path))


def read_config(path: Path) -> EvaluationConfig:
    """The run configuration of a ``config.yaml`` (see :func:`read_run_document`)."""
    return read_run_document(path)[0]
