"""The driver of an evaluation run: it holds the results folder, plans the cases, hands them to an
executor's workers, and writes the run's files from the journal at the end.

The workers (one model each: :class:`~samia.evaluation.runner.LocalExecutor` in this process,
:class:`~samia.evaluation.ray_executor.RayExecutor` on a Ray cluster) write every finished unit into
the journal themselves, so the files a run ends with do not depend on where its cases ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd

from samia.data import Case, build_manifest, select_cases
from samia.errors import ConfigurationError, SamiaError
from samia.evaluation.config import EvaluationConfig, parse_run_document, run_document
from samia.evaluation.folders import RunFolder, open_folder
from samia.evaluation.progress import ProgressHooks
from samia.evaluation.replay import prompts_file_bytes, read_prompts_file
from samia.evaluation.runner import CaseRun, LocalExecutor
from samia.evaluation.schema import ROW_ORDER
from samia.evaluation.store import ResultsStore, folder_lock
from samia.evaluation.summary import everything_instances, summarize
from samia.io.formats import image_stem
from samia.models.exported import AUTO_BACKEND
from samia.models.settings import ModelSettings


@dataclass(frozen=True)
class EvaluationOutcome:
    """What a finished (or resumed) run holds: all rows, their summaries, the failures."""

    results: pd.DataFrame
    summary: pd.DataFrame
    errors: pd.DataFrame
    warnings: pd.DataFrame
    instances: pd.DataFrame
    skipped_small: int
    units_run: int
    units_skipped: int
    model: ModelSettings
    """The model as the run used it: ``auto`` resolved to the backend that ran."""


class Workers(Protocol):
    """Started workers: the model's provenance, and cases in, finished cases out (in any order)."""

    provenance: dict[str, Any]

    def run(self, cases: list[Case]) -> Iterator[CaseRun]: ...


class Executor(Protocol):
    """Where the cases of a run are evaluated."""

    def start(
        self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks
    ) -> AbstractContextManager[Workers]: ...


def recorded_run(folder: RunFolder, store: ResultsStore) -> tuple[EvaluationConfig, dict[str, Any]] | None:
    """The options and provenance in the folder's ``config.yaml`` when the folder holds rows of that
    run; None for a new folder, or one whose earlier run wrote no row (it is taken over)."""
    if not folder.is_file("config.yaml") or store.is_empty():
        return None
    return parse_run_document(folder.read_bytes("config.yaml"), folder.where("config.yaml"))


def settle_backend(
    config: EvaluationConfig, recorded: tuple[EvaluationConfig, dict[str, Any]] | None
) -> EvaluationConfig:
    """``config`` with a concrete backend: ``auto`` becomes the backend ``recorded`` by the run this
    resumes (so a resumed run is measured the same way), else the fastest installed one."""
    if config.model.backend != AUTO_BACKEND:
        return config
    if recorded is not None and recorded[0].model.backend != AUTO_BACKEND:
        return replace(config, model=replace(config.model, backend=recorded[0].model.backend))
    return replace(config, model=config.model.resolved())


def check_resume(
    folder: RunFolder,
    config: EvaluationConfig,
    provenance: dict[str, Any],
    recorded: tuple[EvaluationConfig, dict[str, Any]] | None,
) -> None:
    """Refuse to mix rows of a different run into an existing results folder, then (re)write ``config.yaml``.

    The options (data folder resolved, strategies as a set) and the weights' SHA-256 must match
    those ``recorded`` (:func:`recorded_run`).
    """
    if recorded is not None:
        previous, recorded_provenance = recorded
        differences = previous.differences(config)
        before, weights = recorded_provenance.get("weights_sha256"), provenance["weights_sha256"]
        if before is not None and before != weights:
            differences["weights_sha256"] = (before, weights)
        if differences:
            listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in differences.items())
            raise ConfigurationError(
                f"{folder.location} holds results of a different run ({listed}); use another --out folder"
            )
    folder.write_bytes("config.yaml", run_document(config, provenance))


def _case_named(error: SamiaError) -> str:
    """The case a listing error is about, as the dataset names it: the case id the layout gives
    (an image without its mask), else the file's stem (``liver_003`` for ``liver_003.nii.gz``)."""
    case_id = getattr(error, "case_id", None)
    return case_id if case_id else image_stem(getattr(error, "path", "") or "dataset")


def plan_cases(config: EvaluationConfig, store: ResultsStore) -> list[Case]:
    """The run's cases (those named by ``cases``, then the first ``limit``); cases the manifest
    could not make are recorded as errors.

    Raises:
        InputError: a ``--prompts`` file names a case the dataset does not have.
        DatasetLayoutError: ``cases`` names a case the dataset does not have.
    """
    manifest_errors: list[SamiaError] = []
    cases = build_manifest(
        config.data, config.reading.layout, config.reading.modality, manifest_errors, config.reading.instances
    )
    store.replace_listing_errors(
        [(_case_named(error), getattr(error, "path", config.data), error) for error in manifest_errors]
    )
    if config.prompts_file is not None:
        read_prompts_file(config.prompts_file).check_cases({case.case_id for case in cases})
    cases = sorted(select_cases(cases, config.cases, config.data), key=lambda case: case.case_id)
    return cases if config.limit is None else cases[: config.limit]


def evaluate(
    config: EvaluationConfig, progress: ProgressHooks | None = None, executor: Executor | None = None
) -> EvaluationOutcome:
    """Run (or resume) ``config`` and write ``results.parquet``, ``summary.csv``, ``errors.csv``,
    ``warnings.csv``, ``prompts.jsonl``, ``config.yaml`` (and ``everything_instances.csv`` for
    everything mode) into ``config.out``.

    Args:
        config: the run.
        progress: callbacks for progress bars (cases; and prompt decodings per unit where the
            cases run in this process).
        executor: where the cases run; default :class:`~samia.evaluation.runner.LocalExecutor`.
    """
    progress = progress or ProgressHooks()
    folder = open_folder(config.out)
    folder.make()
    with folder_lock(folder):
        store = ResultsStore(folder)
        recorded = recorded_run(folder, store)
        config = settle_backend(config, recorded)
        with (executor or LocalExecutor()).start(config, store, progress) as workers:
            check_resume(folder, config, workers.provenance, recorded)
            cases = plan_cases(config, store)
            progress.report_cases_total(len(cases))
            pending = []
            for case in cases:
                if store.case_done(case.case_id):
                    progress.report_case_done(case.case_id)
                else:
                    pending.append(case)
            units_run, units_skipped = 0, len(cases) - len(pending)
            for finished in workers.run(pending):
                units_run += finished.units_run
                units_skipped += finished.units_skipped
                progress.report_case_done(finished.case_id)
        return _write_outcome(folder, store, units_run, units_skipped, config.model)


def _write_outcome(
    folder: RunFolder, store: ResultsStore, units_run: int, units_skipped: int, model: ModelSettings
) -> EvaluationOutcome:
    """Rebuild the run's files from the journal and return what they hold."""
    results, units = store.consolidate(ROW_ORDER)
    summary = summarize(results)
    folder.write_bytes("summary.csv", summary.to_csv(index=False).encode())
    instances = everything_instances(results)
    if not instances.empty:
        folder.write_bytes("everything_instances.csv", instances.to_csv(index=False).encode())
    folder.write_bytes("prompts.jsonl", prompts_file_bytes(results))
    skipped_small = int(units["skipped_small"].sum()) if "skipped_small" in units else 0
    return EvaluationOutcome(
        results, summary, store.errors(), store.warnings(), instances, skipped_small, units_run, units_skipped, model
    )
