"""Multi-rater evaluation: a model, as one or more samplers, scored against every rater of every object.

For each object of a multi-rater dataset (:mod:`samia.data.raters`) the prompt is the tight box of
the union of its raters' masks (every rater's object lies inside it); each sampler of
:data:`samia.samplers.SAMPLERS` answers it with ``N`` masks, scored by
:func:`samia.metrics.multirater.object_scores`. A sampler's per-pixel probability map (the mean of
its samples) and the raters' mean mask are kept per object, so the report can show where the
model hesitates beside where the raters disagree.

Results folder ``OUT``::

    OUT/config.yaml                     options, model provenance, layout and raters (written first)
    OUT/.journal/raters/<case>.json     the rows of one finished case (atomic: whole or absent)
    OUT/.journal/errors/                one record per failed case (the run goes on)
    OUT/maps/<case>.npz                 per object: ``raters_<label>`` (the raters' mean mask) and
                                        ``<sampler>_<label>`` (that sampler's probability map), float16
    OUT/raters.parquet                  every row once (rebuilt at the end of every run)
    OUT/errors.csv                      every failure

A killed run leaves only whole cases; running again skips them (options and weights must match).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samia.data.raters import RaterCase, RaterScan, rater_objects, read_rater_labels, scan_rater_dataset
from samia.errors import ConfigurationError, SamiaError
from samia.evaluation.folders import RunFolder, open_folder
from samia.evaluation.store import ResultsStore, folder_lock, unit_key
from samia.metrics.multirater import object_scores
from samia.models.settings import ModelSettings
from samia.settings_groups import SettingsGroup
from samia.version import __version__

RATER_RESULTS = "raters.parquet"
"""The file of a multi-rater run's rows (beside ``config.yaml``)."""

RATER_COLUMNS = (
    "dataset", "case", "label", "label_name", "n_raters", "raters", "model", "weights_sha256", "sampler",
    "n_samples", "seed", "box", "dice_rater_mean", "dice_rater_min", "dice_rater_max", "dice_majority",
    "iou_majority", "dice_staple", "ged", "matched_iou", "best_match_dice", "diversity", "ece",
    "uncertainty_agreement", "inter_rater_dice", "rater_dice",
)  # fmt: skip
"""The columns of ``raters.parquet``, in order (``rater_dice``: JSON, rater -> Dice of the answer)."""


@dataclass
class RaterEvaluationConfig(SettingsGroup):
    """A multi-rater evaluation run.

    Attributes:
        data: the dataset folder (a layout of :data:`samia.data.raters.RATER_LAYOUTS`).
        out: the results folder.
        model: the model and how it runs.
        samplers: sampler names (:data:`samia.samplers.SAMPLERS`, or ``latent`` for a model with a
            ua_adapter); None = ``latent`` for such a model, else every one of ``SAMPLERS``.
        samples: ``N`` of the ``jitter`` and ``flips`` samplers (flips: at most 8).
        jitter_fraction: how far ``jitter`` moves box corners, as a fraction of the box side.
        layout: ``auto`` or one of the multi-rater layouts.
        preset: intensity preset name; None = the modality's default.
        min_area: objects whose raters' union covers fewer pixels are left out.
        seed: seed of the jitter draws (per object, order-independent).
        limit: only the first ``limit`` cases.
        cases: only these case ids.
    """

    data: str
    out: str
    model: ModelSettings = field(default_factory=ModelSettings)
    samplers: list[str] | None = None
    samples: int = 8
    jitter_fraction: float = 0.1
    layout: str = "auto"
    preset: str | None = None
    min_area: int = 0
    seed: int = 0
    limit: int | None = None
    cases: list[str] | None = None

    def __post_init__(self) -> None:
        from samia.samplers import LATENT_SAMPLER, SAMPLERS

        known = (*SAMPLERS, LATENT_SAMPLER)
        unknown = [name for name in self.samplers or [] if name not in known]
        if unknown or self.samplers == []:
            raise ConfigurationError(f"unknown sampler(s) {unknown or '(none given)'}; known: {', '.join(known)}")
        if self.samples < 1:
            raise ConfigurationError(f"--samples must be at least 1, got {self.samples}")

    def comparable(self) -> dict[str, Any]:
        """The options a resumed run must share with the run it resumes."""
        options = self.flat()
        for name in ("out", "limit", "cases", "device"):
            options.pop(name, None)
        options["data"] = str(Path(self.data).resolve())
        options["samplers"] = None if self.samplers is None else sorted(self.samplers)
        return options


@dataclass(frozen=True)
class RaterOutcome:
    """A finished multi-rater run: its rows, its errors, the dataset as read, and the results folder."""

    results: pd.DataFrame
    errors: pd.DataFrame
    scan: RaterScan
    out: str


def _object_seed(seed: int, case: str, label: int, sampler: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}|{case}|{label}|{sampler}".encode("utf-8", "surrogateescape")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _journal_name(case: str) -> str:
    return f".journal/raters/{hashlib.sha1(case.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}.json"


def _document(config: RaterEvaluationConfig, provenance: dict[str, Any]) -> bytes:
    import yaml

    return yaml.safe_dump({"multirater": True, **config.to_dict(), "provenance": provenance}, sort_keys=False).encode()


def _check_resume(folder: RunFolder, config: RaterEvaluationConfig, provenance: dict[str, Any]) -> None:
    """Refuse to mix rows of another run into ``folder``; then (re)write its ``config.yaml``."""
    import yaml

    if folder.is_file("config.yaml") and folder.names(".journal/raters", suffix=".json"):
        recorded = yaml.safe_load(folder.read_bytes("config.yaml")) or {}
        if not recorded.get("multirater"):
            raise ConfigurationError(f"{folder.location} holds a one-truth evaluation; use another --out folder")
        before = RaterEvaluationConfig.from_dict(
            {k: v for k, v in recorded.items() if k not in ("multirater", "provenance")}
        )
        changed = {
            k: (v, config.comparable().get(k))
            for k, v in before.comparable().items()
            if config.comparable().get(k) != v
        }
        if recorded.get("provenance", {}).get("weights_sha256") != provenance["weights_sha256"]:
            changed["weights_sha256"] = (
                recorded.get("provenance", {}).get("weights_sha256"),
                provenance["weights_sha256"],
            )
        if changed:
            listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise ConfigurationError(
                f"{folder.location} holds results of a different run ({listed}); use another --out folder"
            )
    folder.write_bytes("config.yaml", _document(config, provenance))


class RaterCaseEvaluator:
    """Scores the objects of one case with every sampler (one model, one predictor, reused)."""

    def __init__(self, config: RaterEvaluationConfig, scan: RaterScan) -> None:
        from samia.models import PromptableSegmenter
        from samia.models.ua_adapter import latent_nets
        from samia.predictor import SamiaPredictor
        from samia.samplers import LATENT_SAMPLER, SAMPLERS

        self.config, self.scan = config, scan
        self.model = config.model.load()
        self.samples_latent = isinstance(self.model, PromptableSegmenter) and latent_nets(self.model) is not None
        self.samplers = config.samplers or ([LATENT_SAMPLER] if self.samples_latent else list(SAMPLERS))
        if self.samples_latent != (self.samplers == [LATENT_SAMPLER]):
            raise ConfigurationError(
                f"--sampler latent is the one sampler of a model with a ua_adapter; {self.model.name} "
                + ("has one" if self.samples_latent else "has none")
                + f" (asked for {', '.join(self.samplers)})"
            )
        self.predictor = SamiaPredictor(self.model)

    def evaluate(self, case: RaterCase) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        """The case's rows and its maps (``raters_<label>``, ``<sampler>_<label>``, float16 ``(H, W)``)."""
        from samia.prompts.primitives import tight_box
        from samia.samplers import draw_samples
        from samia.transforms import get_preset, preset_for, to_rgb_uint8
        from samia.types import Prompt

        image, labels = read_rater_labels(case, self.scan)
        preset = get_preset(self.config.preset) if self.config.preset else preset_for(image)
        rgb = to_rgb_uint8(image, preset)
        if not self.samples_latent:  # a ua_adapter model encodes the image with each code instead
            self.predictor.set_image(rgb)
        rows, maps = [], {}
        for obj in rater_objects(labels, self.scan.raters, self.config.min_area):
            box = tight_box(np.asarray(obj.masks.any(axis=0)))
            prompt = Prompt(box=box)
            maps[f"raters_{obj.label}"] = obj.masks.mean(axis=0).astype(np.float16)
            for sampler in self.samplers:
                rng = _object_seed(self.config.seed, case.case_id, obj.label, sampler)
                samples = draw_samples(
                    sampler, self.predictor, rgb, prompt, self.config.samples, rng, self.config.jitter_fraction
                )
                maps[f"{sampler}_{obj.label}"] = samples.mean(axis=0).astype(np.float16)
                rows.append(self._row(case, obj.label, obj.raters, obj.masks, sampler, samples, box))
        return rows, maps

    def _row(
        self,
        case: RaterCase,
        label: int,
        raters: tuple[str, ...],
        masks: np.ndarray,
        sampler: str,
        samples: np.ndarray,
        box: np.ndarray,
    ) -> dict[str, Any]:
        from samia.metrics.multirater import pairwise_iou

        answer = (samples.mean(axis=0) >= 0.5)[None]
        iou = pairwise_iou(answer, masks)[0]
        return {
            "dataset": self.scan.dataset,
            "case": case.case_id,
            "label": label,
            "label_name": self.scan.label_names.get(label, f"label_{label}"),
            "n_raters": len(raters),
            "raters": ",".join(raters),
            "model": self.model.name,
            "weights_sha256": self.model.weights_sha256,
            "sampler": sampler,
            "n_samples": len(samples),
            "seed": self.config.seed,
            "box": json.dumps([float(v) for v in box]),
            **object_scores(samples, masks),
            "rater_dice": json.dumps({r: float(2 * v / (1 + v)) for r, v in zip(raters, iou)}),
        }


def evaluate_raters(
    config: RaterEvaluationConfig, on_case: Callable[[str, int, int], None] | None = None
) -> RaterOutcome:
    """Run (or resume) a multi-rater evaluation; ``on_case(case_id, done, total)`` after each case.

    Raises:
        DatasetLayoutError: the data folder has no multi-rater layout.
        ConfigurationError: the results folder holds another run.
    """
    config = replace(config, data=str(Path(config.data).resolve()))
    scan = scan_rater_dataset(config.data, config.layout)
    cases = [c for c in scan.cases if config.cases is None or c.case_id in config.cases][: config.limit]
    folder = open_folder(config.out)
    folder.make()
    with folder_lock(folder):
        store = ResultsStore(folder)
        folder.make(".journal/raters")
        folder.remove_partials(".journal/raters")
        evaluator = RaterCaseEvaluator(config, scan)
        provenance = {
            "samia_version": __version__,
            "model": evaluator.model.name,
            "weights_sha256": evaluator.model.weights_sha256,
            "backend": getattr(evaluator.model, "backend", "torch"),
            "layout": scan.layout,
            "raters": list(scan.raters),
        }
        _check_resume(folder, config, provenance)
        store.replace_listing_errors([(getattr(e, "case_id", ""), getattr(e, "path", ""), e) for e in scan.problems])
        for done, case in enumerate(cases, start=1):
            if not folder.is_file(_journal_name(case.case_id)):
                _run_case(evaluator, case, folder, store)
            if on_case is not None:
                on_case(case.case_id, done, len(cases))
        results = _consolidate(folder, store)
    return RaterOutcome(results, store.errors(), scan, config.out)


def _run_case(evaluator: RaterCaseEvaluator, case: RaterCase, folder: RunFolder, store: ResultsStore) -> None:
    """Evaluate one case and journal it; a failure is recorded and the run goes on."""
    key = unit_key(case.case_id, -1)
    try:
        rows, maps = evaluator.evaluate(case)
    except SamiaError as error:
        store.record_error(key, case.case_id, -1, getattr(error, "path", str(case.image_path)), error)
        return
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps)  # type: ignore[arg-type]  # the stub reads **maps as allow_pickle
    folder.make("maps")
    folder.write_bytes(f"maps/{_safe_name(case.case_id)}.npz", buffer.getvalue())
    folder.write_bytes(_journal_name(case.case_id), json.dumps(rows).encode())  # last: the case is done
    store.mark_case_done(case.case_id)


def _safe_name(case: str) -> str:
    """``case`` as a file name: itself when plain, else with a hash (a case id may hold ``/``)."""
    plain = case.replace("/", "_").replace("\\", "_")
    if plain == case and not case.startswith("."):
        return case
    return f"{plain.lstrip('.')}-{hashlib.sha1(case.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def map_file(case: str) -> str:
    """The name, under a results folder, of a case's maps (module docstring)."""
    return f"maps/{_safe_name(case)}.npz"


def _consolidate(folder: RunFolder, store: ResultsStore) -> pd.DataFrame:
    """Rebuild ``raters.parquet`` and ``errors.csv`` from the journal: every row once."""
    rows = [
        row for name in folder.names(".journal/raters", suffix=".json") for row in json.loads(folder.read_bytes(name))
    ]
    frame = pd.DataFrame(rows, columns=list(RATER_COLUMNS))
    frame = frame.sort_values(["case", "label", "sampler"], kind="stable").reset_index(drop=True)
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    folder.write_bytes(RATER_RESULTS, sink.getvalue())
    folder.write_bytes("errors.csv", store.errors().to_csv(index=False).encode())
    return frame


def read_rater_results(folder: str | Path) -> pd.DataFrame | None:
    """A results folder's ``raters.parquet``, or None when it is no multi-rater run."""
    path = Path(folder) / RATER_RESULTS
    return pd.read_parquet(path) if path.is_file() else None
