"""Session fixtures shared by the evaluation and CLI tests: seeded phantom datasets."""

from pathlib import Path

import numpy as np
import pytest

from samia.data import write_phantom_dataset


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
