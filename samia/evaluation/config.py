"""The configuration of an evaluation run, dumped as ``config.yaml`` next to its results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from samia.auto import EverythingSettings
from samia.data.layouts import resolve_instances
from samia.errors import ConfigurationError
from samia.evaluation.folders import is_uri
from samia.metrics.surface import NSD_VARIANTS
from samia.models.exported import check_backend
from samia.prompts import JitterBand, ProtocolSettings
from samia.prompts.protocols import get_protocol
from samia.selection import SELECTIONS, Selection
from samia.transforms.geometry import INPUT_PIPELINES

RESUME_INSENSITIVE = frozenset({"limit", "cases", "device", "save_masks", "embedding_cache_dir", "out", "decode_batch"})
"""Options that may change between a run and its resumption without mixing incomparable rows."""

NOT_A_CONDITION = RESUME_INSENSITIVE | {"data", "model", "checkpoint", "strategies", "selections", "layout"}
"""Options that say which rows a run has, not how they were measured (see :meth:`EvaluationConfig.condition`)."""


@dataclass
class EvaluationConfig:
    """Everything that defines an evaluation run.

    Attributes:
        data: dataset root folder (a layout ``samia.data.build_manifest`` understands).
        out: results folder.
        model: registry name (``samia.models.MODEL_REGISTRY``).
        strategies: prompt strategy names (``samia.prompts.STRATEGIES``), each run on every object.
        checkpoint: weights file; None = the model's bundled weights.
        layout: ``auto``, ``folder``, ``msd``, ``nnunet`` or ``cvpr24``.
        modality: overrides the dataset's modality when given.
        selections: mask selection rules to report (subset of :data:`SELECTIONS`).
        seed: seed of every random choice (per object, order-independent).
        limit: evaluate only the first ``limit`` cases of the manifest.
        cases: evaluate only these case ids (before ``limit``); None = every case.
        save_masks: write each predicted mask under ``out/masks/``.
        axis: array axis along which volumes are sliced (0 = z).
        protocol: ``samia`` or ``huang2024`` (``samia.prompts.protocols``): the prompt rules, and
            the defaults of ``min_area`` and ``preset``, which ``huang2024`` fixes.
        input_pipeline: ``sam``, ``litemedsam`` or ``medsam`` (``samia.transforms.geometry``);
            None = the model's reference pipeline.
        min_area: objects smaller than this many pixels on a slice are skipped and counted; None
            = the protocol's (samia 50, huang2024 51, i.e. objects of <= 50 px dropped).
        connected_components: one object per connected component instead of per label value.
        instances: the label maps number the objects of this one class (instance maps); None: as
            the dataset's ``dataset.json`` says (each value a class by default).
        preset: intensity preset name; None = the modality's default.
        nsd_tolerance_mm: tolerance of the normalised surface distance, mm.
        nsd_variant: ``surfel`` (the published NSD) or ``boundary_pixels``.
        nsd_zero_at_dice: NSD is reported as 0 where Dice <= this value (the CVPR 2024
            challenge's rule uses 0.2); None = NSD as measured.
        device: torch device.
        backend: ``torch``, ``onnxruntime`` or ``openvino`` (``samia.models.exported``).
        precision: ``fp32``, or ``bf16`` where the backend and the CPU run it.
        embedding_cache_dir: optional folder for an on-disk embedding cache.
        jitter_bands: ``"LOW-HIGH"`` displacement bands of ``box_jitter``/``point_jitter``.
        jitter_unit: ``px`` or ``percent`` (of the box size; see ``samia.prompts.JitterBand``).
        jitter_repeats: random draws per band.
        max_clicks: clicks of the ``clicks`` strategy.
        points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh, box_nms_thresh:
            everything-mode settings (``samia.auto.EverythingSettings``).
        instance_iou: IoU at which a generated mask counts as finding an object (everything F1).
        prompts_file: replay the prompts of this ``prompts.jsonl`` instead of generating them.
        decode_batch: prompts decoded (and objects click-simulated) at a time; bounds memory per
            image whatever its number of objects and prompt variants.
    """

    data: str
    out: str
    model: str
    strategies: list[str]
    checkpoint: str | None = None
    layout: str = "auto"
    modality: str | None = None
    selections: list[Selection] = field(default_factory=lambda: list(SELECTIONS))
    seed: int = 0
    limit: int | None = None
    cases: list[str] | None = None
    save_masks: bool = False
    axis: int = 0
    protocol: str = "samia"
    input_pipeline: str | None = None
    min_area: int | None = None
    connected_components: bool = False
    instances: str | None = None
    preset: str | None = None
    nsd_tolerance_mm: float = 2.0
    nsd_variant: str = "surfel"
    nsd_zero_at_dice: float | None = None
    device: str = "cpu"
    backend: str = "torch"
    precision: str = "fp32"
    embedding_cache_dir: str | None = None
    jitter_bands: list[str] = field(default_factory=lambda: ["0-10", "10-20", "20-30"])
    jitter_unit: str = "px"
    jitter_repeats: int = 3
    max_clicks: int = 10
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    instance_iou: float = 0.5
    prompts_file: str | None = None
    decode_batch: int = 32

    def __post_init__(self) -> None:
        self.instances = resolve_instances(self.data, self.instances, self.connected_components)
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
        if self.nsd_tolerance_mm <= 0:
            raise ConfigurationError("the NSD tolerance must be > 0 mm")
        if self.nsd_variant not in NSD_VARIANTS:
            raise ConfigurationError(f"unknown NSD variant {self.nsd_variant!r}; known: {', '.join(NSD_VARIANTS)}")
        if self.input_pipeline is not None and self.input_pipeline not in INPUT_PIPELINES:
            raise ConfigurationError(
                f"unknown input pipeline {self.input_pipeline!r}; known: {', '.join(INPUT_PIPELINES)}"
            )
        check_backend(self.backend, self.precision)
        self._apply_protocol()
        self._check_out_is_outside_the_data()
        self.protocol_settings()
        self.everything_settings()

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

    def _apply_protocol(self) -> None:
        """Fill ``min_area`` and ``preset`` from the protocol; refuse values that contradict a protocol
        that fixes them (``huang2024`` is exact or it is not ``huang2024``)."""
        protocol = get_protocol(self.protocol)
        if self.protocol == "samia":
            self.min_area = protocol.min_area if self.min_area is None else self.min_area
            return
        fixed = {"min_area": protocol.min_area, "preset": protocol.preset, "connected_components": False}
        contradicted = [
            f"{name}={getattr(self, name)!r}"
            for name, value in fixed.items()
            if getattr(self, name) not in (None, value)
        ]
        if contradicted:
            raise ConfigurationError(
                f"the {self.protocol} protocol fixes {', '.join(f'{k}={v!r}' for k, v in fixed.items())}; "
                f"got {', '.join(contradicted)}: drop them, or use --protocol samia"
            )
        self.min_area, self.preset = protocol.min_area, protocol.preset

    @property
    def oracle_smoothing(self) -> float:
        """The Dice smoothing of the protocol's ``oracle`` rule."""
        return get_protocol(self.protocol).oracle_smoothing

    def protocol_settings(self) -> ProtocolSettings:
        """The strategies' parameters (validated)."""
        bands = tuple(JitterBand.parse(text, self.jitter_unit) for text in self.jitter_bands)  # type: ignore[arg-type]
        return ProtocolSettings(bands, self.jitter_repeats, 5, self.max_clicks)

    def everything_settings(self) -> EverythingSettings:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ConfigurationError("points per side and per batch must be >= 1")
        return EverythingSettings(
            self.points_per_side,
            self.points_per_batch,
            self.pred_iou_thresh,
            self.stability_score_thresh,
            box_nms_thresh=self.box_nms_thresh,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvaluationConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def comparable(self) -> dict[str, Any]:
        """The options as a resumption compares them: the data folder resolved, strategies and
        selections as sets (their order does not change the rows)."""
        values = self.to_dict()
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
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigurationError(f"{where} is corrupt, not a samia run configuration ({reason})") from None


def read_run_document(path: Path) -> tuple[EvaluationConfig, dict[str, Any]]:
    """``(config, provenance)`` of a ``config.yaml`` file (see :func:`parse_run_document`)."""
    return parse_run_document(Path(path).read_bytes(), str(path))


def read_config(path: Path) -> EvaluationConfig:
    """The run configuration of a ``config.yaml`` (see :func:`read_run_document`)."""
    return read_run_document(path)[0]
