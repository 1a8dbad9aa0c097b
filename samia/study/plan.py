"""The study's split (test, validation, training pool) and its runs (method x cases x repeat).

The cases, sorted by id, are permuted once with the study's seed: the first ``round(test_fraction
x n)`` (at least 1) are the test cases, the next ``val_cases`` the validation cases, the rest the
training pool. Every run of every method is tested on the same test cases and validated on the
same validation cases. Repeat ``r`` orders the pool by a permutation seeded by ``(seed, r)``; its
run with ``n`` cases trains on the first ``n`` of that order, so within a repeat the subsets are
nested (the 2 cases of ``n = 2`` are among the 4 of ``n = 4``) and every method sees the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samia.errors import ConfigurationError, DatasetLayoutError
from samia.study.config import StudyConfig, StudyMethod

RUNS_FOLDER = "runs"
ZERO_SHOT_FOLDER = "zero_shot"


@dataclass(frozen=True)
class StudySplit:
    """Which cases test, validate and train (ids sorted within each part).

    Attributes:
        test: held-out test cases (never trained or validated on).
        val: validation cases (early stopping of every run).
        pool: training pool (each run trains on a subset).
        data_sha256: :func:`samia.finetuning.data.dataset_hash` of every case of the dataset.
        seed: the study's seed (of the split and of the repeats' orders).
        raters: the raters of a multi-rater dataset (its runs are scored with GED against them);
            empty for one-truth data.
    """

    test: tuple[str, ...]
    val: tuple[str, ...]
    pool: tuple[str, ...]
    data_sha256: str
    seed: int
    raters: tuple[str, ...] = ()

    @property
    def multi_rater(self) -> bool:
        return bool(self.raters)

    def order(self, repeat: int) -> list[str]:
        """Repeat ``repeat``'s seeded order of the pool: its runs train on prefixes of it."""
        permutation = np.random.default_rng([self.seed, repeat]).permutation(len(self.pool))
        return [self.pool[i] for i in permutation]

    def to_record(self) -> dict[str, Any]:
        return {
            "test": list(self.test),
            "val": list(self.val),
            "pool": list(self.pool),
            "data_sha256": self.data_sha256,
            "seed": self.seed,
            **({"raters": list(self.raters)} if self.raters else {}),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StudySplit:
        return cls(
            tuple(record["test"]),
            tuple(record["val"]),
            tuple(record["pool"]),
            record["data_sha256"],
            record["seed"],
            tuple(record.get("raters", ())),
        )


def split_study(
    case_ids: Sequence[str],
    test_fraction: float,
    val_cases: int,
    seed: int,
    data_sha256: str,
    source: str | Path,
    raters: Sequence[str] = (),
) -> StudySplit:
    """Split the cases ``case_ids`` into test, validation and pool (see the module docstring).

    Raises:
        DatasetLayoutError: fewer cases than the test and validation parts and one training case
            need (the message names ``source`` and the numbers).
    """
    ids = sorted(case_ids)
    n_test = max(1, round(test_fraction * len(ids)))
    if len(ids) < n_test + val_cases + 1:
        raise DatasetLayoutError(
            source,
            f"has {len(ids)} cases: too few for {n_test} test + {val_cases} validation cases and at least one "
            "training case (lower --test-fraction or --val-cases, or add cases)",
        )
    permuted = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    parts = permuted[:n_test], permuted[n_test : n_test + val_cases], permuted[n_test + val_cases :]
    test, val, pool = (tuple(sorted(part)) for part in parts)
    return StudySplit(test, val, pool, data_sha256, seed, tuple(raters))


@dataclass(frozen=True)
class StudyRun:
    """One fine-tuning run of the study and its evaluation on the test cases.

    Attributes:
        method: the curve it belongs to.
        n_cases: number of training cases.
        repeat: the pool order it takes its cases from.
        cases: its training cases (the first ``n_cases`` of that order).
    """

    method: StudyMethod
    n_cases: int
    repeat: int
    cases: tuple[str, ...]

    @property
    def name(self) -> str:
        """``LABEL/nNNN_rR``: the run's folder under ``runs/`` and its name in tables."""
        return f"{self.method.label}/n{self.n_cases:03d}_r{self.repeat}"

    def folder(self, study: Path) -> Path:
        return study / RUNS_FOLDER / self.name

    def seed(self, study_seed: int) -> int:
        """Seed of the run's prompts and shuffles: one per repeat, shared by the methods (paired runs)."""
        return study_seed + self.repeat


def plan_runs(config: StudyConfig, split: StudySplit) -> list[StudyRun]:
    """Every run of ``config``: repeat by repeat, then by number of cases, then by method (so an
    interrupted study has whole early curves first).

    Raises:
        ConfigurationError: a ``--cases`` number larger than the training pool (the message gives
            the pool and how the cases were split).
    """
    too_many = [n for n in config.cases if n > len(split.pool)]
    if too_many:
        raise ConfigurationError(
            f"--cases {max(too_many)} is more than the {len(split.pool)} training cases of {config.data} "
            f"({len(split.test) + len(split.val) + len(split.pool)} cases: {len(split.test)} test, "
            f"{len(split.val)} validation, {len(split.pool)} to train on)"
        )
    runs = []
    for repeat in range(config.repeats):
        order = split.order(repeat)
        for n in config.cases:
            runs += [StudyRun(method, n, repeat, tuple(order[:n])) for method in config.study_methods]
    return runs
