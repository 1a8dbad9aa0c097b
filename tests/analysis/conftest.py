"""Fixtures for the analysis tests: synthetic result tables with planted effects, and real runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samia.evaluation import EvaluationConfig, evaluate
from samia.metrics.factors import FACTOR_NAMES

N_OBJECTS = 48
PLANTED_STRATEGY_GAP = 0.2
"""``box`` beats ``point1`` by this much on every object (plus noise)."""

FINE_TUNED_GAIN = 0.1
FINE_TUNED_SHA = "f1e2d3c4" + "0" * 56


def _object_table(rng: np.random.Generator, phantom: Path) -> pd.DataFrame:
    """``N_OBJECTS`` objects with factors; each points at a real phantom image/label for overlays."""
    images = sorted((phantom / "images").iterdir())
    masks = sorted((phantom / "masks").iterdir())
    area = np.round(np.exp(rng.uniform(np.log(60), np.log(2000), N_OBJECTS)))
    return pd.DataFrame(
        {
            "dataset": "synthetic",
            "case": [f"case_{i:03d}" for i in range(N_OBJECTS)],
            "slice": -1,
            "object": [("blob", "low_contrast", "vessel")[i % 3] for i in range(N_OBJECTS)],
            "label": [1 + i % 3 for i in range(N_OBJECTS)],
            "component": -1,
            "modality": ["MR" if i % 2 else "CT" for i in range(N_OBJECTS)],
            "image_path": [str(images[i % len(images)]) for i in range(N_OBJECTS)],
            "label_path": [str(masks[i % len(masks)]) for i in range(N_OBJECTS)],
            "area_px": area,
            "area_mm2": area * 0.64,
            "area_fraction": area / 96**2,
            "contrast": rng.uniform(0.0, 1.0, N_OBJECTS),
            "efd_order": rng.integers(1, 12, N_OBJECTS).astype(float),
            "isoperimetric_ratio": rng.uniform(0.2, 1.0, N_OBJECTS),
            "aspect_ratio": rng.uniform(1.0, 5.0, N_OBJECTS),
            "n_components": 1.0,
        }
    )


def _prompt(strategy: str) -> str:
    points = None if strategy.startswith("box") and strategy != "box_point1" else [[40.0, 40.0], [10.0, 12.0]]
    labels = None if points is None else [1, 0]
    box = [20.0, 20.0, 60.0, 60.0] if strategy.startswith("box") else None
    return json.dumps({"points": points, "labels": labels, "box": box})


def synthetic_results(
    phantom: Path,
    seed: int = 0,
    point1_gap: float = PLANTED_STRATEGY_GAP,
    protocol: bool = True,
    fine_tuned: bool = True,
    factors: bool = True,
) -> pd.DataFrame:
    """Result rows with planted effects, in the columns ``samia evaluate`` writes.

    - ``box`` Dice = 0.3 + 0.6 * contrast + N(0, 0.05): a planted correlation with ``contrast``;
      ``point1`` = ``box`` - ``point1_gap`` + N(0, 0.03) on the same objects.
    - selection rules: ``oracle`` as above; ``predicted_iou`` 0.05 lower; ``single`` 0.05 lower.
    - ``protocol``: also ``box_jitter`` (bands 0-10/10-20/20-30 px, 2 draws each, Dice falling with
      the band) and ``clicks`` (1..4 clicks, Dice rising), with the protocol columns.
    - ``fine_tuned``: a second copy of the model, other weights, ``FINE_TUNED_GAIN`` better.
    - ``factors``: the object factor columns (else left out, as in results of older runs).
    """
    rng = np.random.default_rng(seed)
    objects = _object_table(rng, phantom)
    base = np.clip(0.3 + 0.6 * objects["contrast"].to_numpy() + rng.normal(0, 0.05, N_OBJECTS), 0, 1)
    point1 = np.clip(base - point1_gap + rng.normal(0, 0.03, N_OBJECTS), 0, 1)
    arms: list[tuple[str, int, str, float, int, np.ndarray]] = [
        ("box", 0, "", np.nan, 0, base),
        ("point1", 0, "", np.nan, 0, point1),
    ]
    if protocol:
        for band_index, band in enumerate(("0-10px", "10-20px", "20-30px")):
            for draw in range(2):
                offset = 10.0 * band_index + 5.0
                arms.append(("box_jitter", 2 * band_index + draw, band, offset, 0, base - 0.1 * band_index))
        for clicks in range(1, 5):
            arms.append(("clicks", clicks - 1, "", np.nan, clicks, point1 + 0.05 * clicks))
    models = [("tiny_sam", "random", 0.0)] + ([("tiny_sam", FINE_TUNED_SHA, FINE_TUNED_GAIN)] if fine_tuned else [])
    frames = []
    for model, sha, gain in models:
        for strategy, variant, band, offset, n_clicks, dice in arms:
            for selection, penalty in (("oracle", 0.0), ("predicted_iou", 0.05), ("single", 0.1)):
                value = np.clip(dice + gain - penalty + rng.normal(0, 0.005, N_OBJECTS), 0, 1)
                frame = objects.copy()
                frame = frame.assign(
                    model=model,
                    weights_sha256=sha,
                    strategy=strategy,
                    variant=variant,
                    seed=0,
                    prompt=_prompt(strategy),
                    prompt_meta="{}",
                    preset="percentile",
                    spacing_y=0.8,
                    spacing_x=0.8,
                    selection=selection,
                    candidate=0,
                    predicted_iou=0.5,
                    dice=value,
                    iou=value / (2 - value),
                    hd95=10 * (1 - value),
                    assd=3 * (1 - value),
                    nsd=value,
                    mask_path=None,
                    jitter_band=band,
                    jitter_offset_px=offset,
                    n_clicks=n_clicks,
                    n_generated_masks=-1,
                )
                frames.append(frame)
    results = pd.concat(frames, ignore_index=True)
    return results if factors else results.drop(columns=list(FACTOR_NAMES))


def write_results(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` as ``folder/results.parquet`` (a results folder without config.yaml)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "results.parquet", index=False)
    return folder


@dataclass(frozen=True)
class Planted:
    """The planted effects of :func:`synthetic_results`, and ways to write such tables."""

    phantom: Path
    n_objects: int = N_OBJECTS
    strategy_gap: float = PLANTED_STRATEGY_GAP
    fine_tuned_gain: float = FINE_TUNED_GAIN
    fine_tuned_id: str = "tiny_sam@" + FINE_TUNED_SHA[:8]

    def frame(self, **options) -> pd.DataFrame:
        """:func:`synthetic_results` with ``options`` (seed, point1_gap, protocol, fine_tuned, factors)."""
        return synthetic_results(self.phantom, **options)

    def write(self, folder: Path, **options) -> Path:
        """A results folder holding :meth:`frame`."""
        return write_results(self.frame(**options), folder)


@pytest.fixture
def planted(phantom_2d) -> Planted:
    return Planted(phantom_2d)


@pytest.fixture
def planted_results(planted, tmp_path) -> Path:
    """A results folder of :func:`synthetic_results` (every protocol column, two weights)."""
    return planted.write(tmp_path / "planted")


@pytest.fixture(scope="session")
def tiny_sam_run(phantom_2d, tmp_path_factory) -> Path:
    """A real ``samia evaluate`` run: tiny_sam, box and point1, every selection rule, masks saved."""
    out = tmp_path_factory.mktemp("tiny_sam_run")
    evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(phantom_2d), out=str(out), model="tiny_sam", strategies=["box", "point1"], save_masks=True)
        )
    )
    return out
