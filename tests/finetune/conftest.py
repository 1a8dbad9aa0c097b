"""Fixtures of the fine-tuning tests: small phantom datasets and fast run configurations."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from samia.data import write_phantom_dataset
from samia.finetuning import FinetuneConfig


@pytest.fixture(scope="session")
def phantom_train(tmp_path_factory) -> Path:
    """Five seeded 64 x 64 phantom cases (blob, low-contrast blob, vessel): 4 train + 1 val at fraction 0.2."""
    return write_phantom_dataset(tmp_path_factory.mktemp("ft_train"), 5, np.random.default_rng(11), shape=(64, 64))


@pytest.fixture(scope="session")
def phantom_val(tmp_path_factory) -> Path:
    """Two other seeded 64 x 64 phantom cases, as a separate validation dataset."""
    return write_phantom_dataset(tmp_path_factory.mktemp("ft_val"), 2, np.random.default_rng(12), shape=(64, 64))


@pytest.fixture
def make_config(phantom_train, tmp_path) -> Callable[..., FinetuneConfig]:
    """``make_config(**overrides)``: a 2-epoch ``tiny_sam`` decoder run on :func:`phantom_train` in ``tmp_path/run``."""

    def make(**overrides: Any) -> FinetuneConfig:
        values: dict[str, Any] = dict(
            data=str(phantom_train),
            out=str(tmp_path / "run"),
            model="tiny_sam",
            method="decoder",
            epochs=2,
            lr=1e-3,
            box_jitter_px=3.0,
            negative_margin_px=4,
        )
        values.update(overrides)
        return FinetuneConfig.from_dict(dict(**values))

    return make


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP contention stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def assert_evaluates(tmp_path) -> Callable[[Path, Path], None]:
    """``assert_evaluates(checkpoint, data)``: ``samia evaluate`` (tiny_sam, box) with the checkpoint
    runs without an error, and every row names the checkpoint's SHA-256."""
    from samia.evaluation import EvaluationConfig, evaluate
    from samia.models import file_sha256

    def check(checkpoint: Path, data: Path) -> None:
        config = EvaluationConfig.from_dict(
            dict(
                data=str(data),
                out=str(tmp_path / "eval"),
                model="tiny_sam",
                strategies=["box"],
                checkpoint=str(checkpoint),
            )
        )
        evaluation = evaluate(config)
        assert evaluation.errors.empty and (evaluation.results["weights_sha256"] == file_sha256(checkpoint)).all()

    return check
