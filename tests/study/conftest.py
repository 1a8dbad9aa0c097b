"""Fixtures of the study tests: a phantom dataset of 7 cases and fast study configurations."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samia.data import write_phantom_dataset
from samia.study import StudyConfig


@pytest.fixture(scope="session")
def phantom_cases(tmp_path_factory) -> Path:
    """Seven seeded 64 x 64 phantom cases: 2 test (fraction 0.3), 1 validation, a pool of 4."""
    return write_phantom_dataset(tmp_path_factory.mktemp("study_data"), 7, np.random.default_rng(21), shape=(64, 64))


@pytest.fixture
def make_study(phantom_cases, tmp_path) -> Callable[..., StudyConfig]:
    """``make_study(**overrides)``: ``tiny_sam``, decoder, 1 and 2 cases, one repeat, one epoch."""

    def make(**overrides: Any) -> StudyConfig:
        values: dict[str, Any] = dict(
            data=str(phantom_cases),
            out=str(tmp_path / "study"),
            model="tiny_sam",
            methods=["decoder"],
            cases=[1, 2],
            repeats=1,
            val_cases=1,
            training={"epochs": 1, "objects_per_image": 2, "lr": 1e-3},
        )
        values.update(overrides)
        return StudyConfig.from_dict(dict(**values))

    return make
