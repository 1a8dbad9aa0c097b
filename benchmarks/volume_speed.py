"""Speed levels of a volume (``--speed``): time and masks of each level against ``accurate``.

Two volumes, each object given by its tight 3D box (the CVPR 2024 rule), the bundled LiteMedSAM on
the fastest installed backend (``--backend auto``), one process, a fresh embedding cache per level
(every level pays its own encoder calls):

- the phantom: 100 slices of 128 x 128 with 5 ellipsoids (``samia.data.phantoms.volume_case``,
  seed 0; not used while choosing the levels' steps, which were tuned on seed 1);
- the bundled real volume: ``colin27_aal_3d`` (Colin27 T1 with AAL structures), every structure
  of at least ``--min-voxels`` voxels.

Prints, per volume and level, the seconds, the encoder and decoder calls, the worst object's Dice
against ``accurate``'s mask and the mean Dice against the truth. Verdicts: a level is offered
only where its worst Dice against ``accurate`` is >= 0.95 (``fast``) or >= 0.99 (``default``) on
both volumes; ``ratio = worst Dice``. ``--steps 2,3,4`` also prints candidate steps (how the
levels were chosen); only a run of the levels alone records its rows for the README.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _floor import cpu_name
from _results import Row, record
from _target import report_each

from samia.data import sample_dataset_path
from samia.data.phantoms import volume_case
from samia.embeddings import EmbeddingCache
from samia.io.volume import read_volume
from samia.metrics import dice
from samia.models import build_model
from samia.models.interface import runtime_label
from samia.predictor import SamiaPredictor
from samia.transforms import preset_for
from samia.types import Volume
from samia.volume import VolumePrompt, VolumeSession, box3d_of_mask, segment_volume
from samia.volume.propagation import SPEEDS, Sampling

TARGETS = {"default": 0.99, "fast": 0.95}


def volumes(seed: int, min_voxels: int) -> list[tuple[str, Volume, np.ndarray]]:
    """The phantom and the bundled real volume, each with its label map."""
    phantom, phantom_labels = volume_case(np.random.default_rng(seed), depth=100, n_objects=5)
    folder = sample_dataset_path("colin27_aal_3d")
    real = read_volume(folder / "imagesTr" / "colin27.nii.gz")
    labels = read_volume(folder / "labelsTr" / "colin27.nii.gz").array.astype(np.int32)
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    kept = np.zeros_like(labels)
    for number, value in enumerate(values[counts >= min_voxels], start=1):
        kept[labels == value] = number
    return [(f"phantom (seed {seed})", phantom, phantom_labels), ("colin27_aal_3d", real, kept)]


def run_level(
    model: object, volume: Volume, labels: np.ndarray, sampling: Sampling
) -> tuple[float, list[np.ndarray], int, int]:
    """Seconds, each object's mask, encoder and decoder calls of one level on one volume."""
    predictor = SamiaPredictor(model, cache=EmbeddingCache(max_items=4))  # type: ignore[arg-type]
    prompts = [VolumePrompt(box3d=box3d_of_mask(labels == value)) for value in range(1, int(labels.max()) + 1)]
    started = time.perf_counter()
    with VolumeSession(predictor, volume, preset_for(volume)) as session:
        result = segment_volume(session, prompts, speed=sampling)
    seconds = time.perf_counter() - started
    return seconds, [obj.mask for obj in result.objects], result.slices_encoded, result.decodings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-voxels", type=int, default=2000)
    parser.add_argument("--steps", default="", help="candidate steps to list instead of the levels, e.g. 2,3,4")
    arguments = parser.parse_args()
    levels = {name: SPEEDS[name] for name in ("accurate", "default", "fast")}
    for step in filter(None, arguments.steps.split(",")):
        levels[f"step {step}"] = Sampling(int(step))
    model = build_model("litemedsam", backend="auto")
    print(f"{cpu_name()}; {runtime_label(model)}")
    worst: dict[str, float] = {}
    seconds_of: dict[str, list[str]] = {}
    for name, volume, labels in volumes(arguments.seed, arguments.min_voxels):
        print(f"{name}: {volume.shape} voxels, {int(labels.max())} objects")
        reference: list[np.ndarray] = []
        for level, sampling in levels.items():
            seconds, masks, encoded, decoded = run_level(model, volume, labels, sampling)
            reference = reference or masks
            against = min(dice(mask, first) for mask, first in zip(masks, reference))
            truth = np.mean([dice(mask, labels == value) for value, mask in enumerate(masks, start=1)])
            worst[level] = min(worst.get(level, 1.0), against)
            seconds_of.setdefault(level, []).append(f"{seconds:.1f} s")
            print(
                f"  {level:>9} (step {sampling.step}): {seconds:6.1f} s, {encoded} encoded, {decoded} decoded; "
                f"worst Dice vs accurate {against:.4f}, mean Dice vs truth {truth:.4f}"
            )
    if not arguments.steps:
        record(
            "volume_speed",
            [
                Row(
                    f"`samia segment --speed {level}`, phantom / Colin27 volume",
                    " / ".join(seconds_of[level]),
                    f"worst Dice against accurate {worst[level]:.3f}",
                )
                for level in levels
            ],
        )
    return report_each([(f"{level} worst Dice vs accurate", worst[level], ">=", t) for level, t in TARGETS.items()])


if __name__ == "__main__":
    sys.exit(main())
