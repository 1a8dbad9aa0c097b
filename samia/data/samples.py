"""Small real datasets shipped with samia (built by ``scripts/build_samples.py``).

``colin27_aal_2d``
    folder layout: axial and coronal slices of the Colin27 ("ch2") T1 MRI as 8-bit PNG with AAL
    atlas structures (remapped to 1..K) as PNG label maps.
``colin27_aal_3d``
    MSD layout: one cropped Colin27 T1 sub-volume (1 x 1 x 2 mm) with the same structures, NIfTI
    with its real geometry.

Attribution and licence: ``samia/data/samples/ATTRIBUTION.md``.
"""

from __future__ import annotations

from pathlib import Path

from samia.errors import ConfigurationError, MissingFileError

SAMPLES_ROOT = Path(__file__).resolve().parent / "samples"
"""Folder holding the bundled sample datasets."""

SAMPLE_DATASETS: tuple[str, ...] = ("colin27_aal_2d", "colin27_aal_3d", "fundus_vessels_2d")
"""Names accepted by :func:`sample_dataset_path`."""


def sample_dataset_path(name: str = "colin27_aal_2d") -> Path:
    """The folder of a bundled sample dataset, ready for :func:`samia.data.build_manifest`.

    Raises:
        ConfigurationError: ``name`` is not one of :data:`SAMPLE_DATASETS` (the message lists them).
        MissingFileError: the dataset is known but its folder is missing from this installation
            (rebuild it with ``python scripts/build_samples.py``).
    """
    if name not in SAMPLE_DATASETS:
        raise ConfigurationError(f"unknown sample dataset {name!r}; available: {', '.join(SAMPLE_DATASETS)}")
    path = SAMPLES_ROOT / name
    if not (path / "dataset.json").is_file():
        raise MissingFileError(
            path, "bundled sample dataset is missing; rebuild it with `python scripts/build_samples.py`"
        )
    return path
