"""Running a study: the zero-shot baseline, then every run (fine-tune, then evaluate on the test
cases), resumable run by run.

Each fine-tuning run trains in a fresh Python process, so its ``peak_rss_mb`` is its own
and a run that dies (out of memory, killed) takes nothing else with it. A run is done when its
``run.yaml`` exists (written atomically last); a re-run skips done runs and resumes the others
(``samia finetune`` and ``samia evaluate`` each resume where they stopped). A run that fails is
recorded in its ``error.json`` and the study goes on; the next study run tries it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import yaml

from samia.data import build_manifest
from samia.errors import ConfigurationError, SamiaError
from samia.evaluation import EvaluationConfig, evaluate
from samia.evaluation.raters import RaterEvaluationConfig, evaluate_raters
from samia.files import atomic_write_bytes
from samia.finetuning import FinetuneConfig
from samia.finetuning.data import case_digests, dataset_hash
from samia.finetuning.methods import check_applies
from samia.samplers import LATENT_SAMPLER
from samia.study.config import StudyConfig, read_study_file, write_study_file
from samia.study.curves import Scoring, rater_test_scores, scoring_of, test_scores, write_curves
from samia.study.plan import ZERO_SHOT_FOLDER, StudyRun, StudySplit, plan_runs, split_study

STUDY_FILE = "study.yaml"
RUN_FILE = "run.yaml"
ERROR_FILE = "error.json"
FINETUNE_FOLDER = "finetune"
TEST_FOLDER = "test"


class StudyProgress(Protocol):
    """What :func:`run_study` reports; the CLI prints one line per run."""

    def started(self, name: str, index: int, total: int) -> None: ...

    def finished(self, name: str, record: dict[str, Any], scores: str) -> None:
        """``name`` is done: its ``record`` (``run.yaml``'s content) and its test scores in one line."""

    def failed(self, name: str, message: str) -> None: ...


class TrainingProcessError(SamiaError):
    """The process training a run died (killed, out of memory) or reported an error."""


@dataclass(frozen=True)
class StudyOutcome:
    """A finished (or resumed) study.

    Attributes:
        out: the study folder.
        runs: ``runs.csv`` (see :mod:`samia.study.curves`).
        curve: ``curve.csv``.
        errors: ``errors.csv``: the runs whose last attempt failed.
        done, skipped, failed: runs finished now, found finished, failed now.
        scoring: what the runs were scored by (Dice on one-truth data, GED on multi-rater data).
    """

    out: Path
    runs: pd.DataFrame
    curve: pd.DataFrame
    errors: pd.DataFrame
    done: int
    skipped: int
    failed: int
    scoring: Scoring


def _study_cases(config: StudyConfig) -> tuple[list[str], str, tuple[str, ...]]:
    """``(case ids, data SHA-256, raters)`` of the study's dataset; ``raters`` is empty for one-truth data."""
    from samia.data.raters import rater_data_sha256, rater_layout_of, scan_rater_dataset

    layout = rater_layout_of(config.data, config.reading.layout)
    if layout is not None:
        scan = scan_rater_dataset(config.data, layout)
        return [case.case_id for case in scan.cases], rater_data_sha256(scan.cases), scan.raters
    cases = build_manifest(
        config.data, config.reading.layout, config.reading.modality, instances=config.reading.instances
    )
    return [case.case_id for case in cases], dataset_hash(cases, case_digests(cases)), ()


def open_study(config: StudyConfig) -> tuple[StudySplit, StudyConfig]:
    """The split of ``config.out``'s ``study.yaml`` and the study's configuration grown by
    ``config`` (:meth:`StudyConfig.grown_from`), or a new split of the data and ``config`` when
    there is no study there yet.

    Raises:
        ConfigurationError: the folder holds a study of another configuration or other data (the
            one line names what differs); a ``ua_adapter`` method on one-truth data.
        DatasetLayoutError: too few cases for the split.
    """
    out = Path(config.out)
    case_ids, data_sha256, raters = _study_cases(config)
    latent = [m.label for m in config.study_methods if m.method == "ua_adapter"]
    if latent and not raters:
        raise ConfigurationError(
            f"--method {latent[0]} learns from several raters' masks; {config.data} has one truth per object "
            "(give a multi-rater dataset: raters/<rater>/, stacks/, or masks/ with dataset.json raters)"
        )
    path = out / STUDY_FILE
    if not path.is_file():
        split = split_study(
            case_ids, config.test_fraction, config.val_cases, config.seed, data_sha256, config.data, raters
        )
        return split, config
    previous, record = read_study_file(path)
    differences = previous.differences(config)
    if record.get("data_sha256") != data_sha256:
        differences["data_sha256"] = (record.get("data_sha256"), data_sha256)
    if differences:
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in differences.items())
        raise ConfigurationError(f"{out} holds a different study ({listed}); use another --out folder")
    return StudySplit.from_record(record), config.grown_from(previous)


def test_config(config: StudyConfig, split: StudySplit, out: Path, checkpoint: str | None) -> EvaluationConfig:
    """The evaluation of one model on the study's test cases (the same prompts for every model)."""
    return EvaluationConfig(
        data=config.data,
        out=str(out),
        model=replace(config.model, checkpoint=checkpoint),
        strategies=list(config.strategies),
        reading=config.reading,
        seed=config.seed,
        cases=list(split.test),
    )


def rater_test_config(
    config: StudyConfig, split: StudySplit, out: Path, checkpoint: str | None, latent: bool
) -> RaterEvaluationConfig:
    """The multi-rater evaluation of one model on the study's test cases: its ``latent`` samples
    (a ``ua_adapter`` run), or the study's samplers (every other model), the same draws for every model."""
    return RaterEvaluationConfig(
        data=config.data,
        out=str(out),
        model=replace(config.model, checkpoint=checkpoint),
        samplers=[LATENT_SAMPLER] if latent else list(config.samplers),
        samples=config.samples,
        layout=config.reading.layout,
        preset=config.reading.preset,
        min_area=config.reading.minimum_area,
        seed=config.seed,
        cases=list(split.test),
    )


def test_model(
    config: StudyConfig, split: StudySplit, out: Path, checkpoint: str | None, latent: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """Score one model on the study's test cases into ``out``: its score records
    (:func:`samia.study.curves.test_scores` / :func:`~samia.study.curves.rater_test_scores`) and
    the number of test objects that failed.

    Raises:
        ConfigurationError: no test object could be scored (the one line names an example and
            the errors file).
    """
    if split.multi_rater:
        rated = evaluate_raters(rater_test_config(config, split, out, checkpoint, latent))
        results, errors, scores = rated.results, rated.errors, rater_test_scores
    else:
        tested = evaluate(test_config(config, split, out, checkpoint))
        results, errors, scores = tested.results, tested.errors, test_scores
    if results.empty:
        first = errors.iloc[0] if len(errors) else None
        example = f" (e.g. {first['case']}: {first['message']})" if first is not None else ""
        raise ConfigurationError(
            f"{config.data}: the test cases gave no result to compare with{example}; see "
            f"{out / 'errors.csv'}: a study needs test cases with objects in their masks"
        )
    return scores(results), len(errors)


def train_in_child(config: FinetuneConfig) -> dict[str, Any]:
    """Run ``config`` in a fresh Python process (:mod:`samia.study.train_process`); returns what it
    measured and ``run_seconds`` (the process's wall time: this session's share of the run).

    Raises:
        TrainingProcessError: the process died (killed, out of memory) or reported an error.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="samia-study-") as scratch:
        result = Path(scratch) / "result.json"
        completed = subprocess.run(
            [sys.executable, "-m", "samia.study.train_process", str(result)],
            input=json.dumps(config.to_dict()),
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not result.is_file():
            last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise TrainingProcessError(
                f"the process training {config.out} ended with exit code {completed.returncode} ({last})"
            )
        record = json.loads(result.read_text())
    if "error" in record:
        raise TrainingProcessError(record["error"])
    return {**record, "run_seconds": time.perf_counter() - started}


def run_one(config: StudyConfig, split: StudySplit, run: StudyRun, folder: Path) -> dict[str, Any]:
    """Fine-tune and test ``run`` into ``folder``; returns the record written as ``run.yaml``."""
    training = config.run_config(
        run.method, list(run.cases), list(split.val), str(folder / FINETUNE_FOLDER), run.seed(config.seed)
    )
    trained = train_in_child(training)
    checkpoint = str(folder / FINETUNE_FOLDER / "best.pt")
    scores, errors = test_model(config, split, folder / TEST_FOLDER, checkpoint, run.method.method == "ua_adapter")
    return {
        "run": run.name,
        "method": run.method.label,
        "base_method": run.method.method,
        "train_decoder": run.method.train_decoder,
        "n_cases": run.n_cases,
        "repeat": run.repeat,
        "cases": list(run.cases),
        **trained,
        "test": scores,
        "test_errors": errors,
    }


def run_study(config: StudyConfig, progress: StudyProgress | None = None) -> StudyOutcome:
    """Run (or resume) ``config`` into ``config.out``; see :mod:`samia.study` for the files.

    Raises:
        ConfigurationError: invalid options, another study in the folder, ``--cases`` above the
            training pool, a method that does not apply to the model.
        DatasetLayoutError / CheckpointError / MissingFileError: unusable data or base weights.
    """
    out = Path(config.out)
    split, recorded = open_study(config)
    runs = plan_runs(config, split)
    base = config.model.load()
    for method in config.study_methods:
        check_applies(base, method.method)
    del base
    write_study_file(out / STUDY_FILE, recorded, split.to_record())
    total = len(runs) + 1
    if progress:
        progress.started(ZERO_SHOT_FOLDER, 1, total)
    scoring = scoring_of(split.raters)
    zero_shot, _ = test_model(config, split, out / ZERO_SHOT_FOLDER, config.model.checkpoint)
    if progress:
        progress.finished(ZERO_SHOT_FOLDER, {"test": zero_shot}, scoring.summary(zero_shot))
    done = skipped = failed = 0
    for index, run in enumerate(runs, start=2):
        folder = run.folder(out)
        if (folder / RUN_FILE).is_file():
            skipped += 1
            continue
        if progress:
            progress.started(run.name, index, total)
        try:
            record = run_one(config, split, run, folder)
        except SamiaError as error:
            failed += 1
            message = " ".join(str(error).split())
            failure = {"error": type(error).__name__, "message": message}
            atomic_write_bytes(folder / ERROR_FILE, json.dumps(failure).encode())
            if progress:
                progress.failed(run.name, message)
            continue
        atomic_write_bytes(folder / RUN_FILE, yaml.safe_dump(record, sort_keys=False).encode())
        (folder / ERROR_FILE).unlink(missing_ok=True)
        done += 1
        if progress:
            progress.finished(run.name, record, scoring.summary(record["test"]))
    tables = write_curves(out, recorded.methods, scoring)
    return StudyOutcome(out, *tables, done, skipped, failed, scoring)
