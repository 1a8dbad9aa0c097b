"""Fixtures shared by the tests: seeded phantom datasets, and the real command-line entry point."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from samia.cli.main import main
from samia.data import write_phantom_dataset
from samia.evaluation.ray_executor import LOOPBACK_ONLY

os.environ.update(LOOPBACK_ONLY)  # before any test imports Ray: its servers on 127.0.0.1 only


@pytest.fixture
def cli(monkeypatch, capfd):
    """``cli(*args) -> (exit code, stdout, stderr)`` through the console entry point ``samia.cli.main.main``."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["samia", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capfd.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def phantom_2d(tmp_path_factory) -> Path:
    """Three seeded 2D phantom cases (blob, low-contrast blob, vessel) in the folder layout."""
    return write_phantom_dataset(tmp_path_factory.mktemp("phantom2d"), 3, np.random.default_rng(7), shape=(96, 96))


@pytest.fixture(scope="session")
def phantom_3d(tmp_path_factory) -> Path:
    """One seeded 3D phantom volume (6 slices, anisotropic spacing) in the MSD layout."""
    return write_phantom_dataset(
        tmp_path_factory.mktemp("phantom3d"), 1, np.random.default_rng(8), layout="msd", shape=(64, 64), volume_depth=6
    )
