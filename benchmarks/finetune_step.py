"""Cost of a decoder training step that re-encodes its image relative to one on a cached embedding.

LiteMedSAM (real weights), a bundled real MRI slice, the ``decoder`` method with its default prompt
mix: one optimizer step (prompt sampling, forward, backward, AdamW) with the image embedding read
from the run's embedding cache, against the same step (same prompts) running the frozen image
encoder first, as decoder fine-tuning without a cache would. The ratio is
``1 + time(encoder) / time(decoder step)``.

The decoder's cost grows with the prompts trained per image and with the decoder rounds of a
step (``samia finetune --correction-clicks``; the default of 1 doubles the decoder work), the
encoder's does not; LiteMedSAM's TinyViT encoder is light (about ten single-prompt decoder passes)
while SAM's ViT encoders cost far more. Every combination of ``--objects`` and ``--rounds`` is
printed; the last line is ``ratio=<time(re-encoding step)> / <time(cached step)>`` for the first
of each: one prompt, one decoder pass (Huang et al.'s decoder-only step); target >= 10.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _target import report

from samia.data import build_manifest, sample_dataset_path
from samia.embeddings import EmbeddingCache
from samia.finetuning import FinetuneConfig
from samia.finetuning.data import TrainingImage, load_training_images
from samia.finetuning.methods import make_optimizer, prepare, set_training_mode
from samia.finetuning.step import TrainingStep, make_step_inputs
from samia.finetuning.training_prompts import TrainingPromptSampler
from samia.models import build_model

REPEATS = 7
WARM_UP = 3
CASE = "colin27_axial_063"
"""A slice with 8 structures (caudate, putamen, hippocampus, cerebellum, left and right)."""


def step_seconds(
    step: TrainingStep,
    optimizer: torch.optim.Optimizer,
    image: TrainingImage,
    config: FinetuneConfig,
    cache: EmbeddingCache | None,
    objects: int,
    repeat: int,
) -> float:
    """Wall time of one full training step with the prompts of seed ``repeat``."""
    started = time.perf_counter()
    rng = np.random.default_rng(repeat)
    inputs = make_step_inputs(image, step.model, TrainingPromptSampler.from_config(config), objects, rng, cache)
    optimizer.zero_grad(set_to_none=True)
    step(inputs, rng).backward()
    optimizer.step()
    return time.perf_counter() - started


def paired_medians(
    step: TrainingStep,
    optimizer: torch.optim.Optimizer,
    cached: TrainingImage,
    pixels: TrainingImage,
    config: FinetuneConfig,
    cache: EmbeddingCache,
    objects: int,
) -> tuple[float, float]:
    """Median step times ``(cached, re-encoding)``, measured alternately (same prompts) after a warm-up."""
    times = [
        (
            step_seconds(step, optimizer, cached, config, cache, objects, repeat),
            step_seconds(step, optimizer, pixels, config, None, objects, repeat),
        )
        for repeat in range(WARM_UP + REPEATS)
    ]
    on_cache, encoding = np.median(np.asarray(times[WARM_UP:]), axis=0)
    return float(on_cache), float(encoding)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4], help="prompts trained per step")
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 2], help="decoder rounds per step")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: stable on a shared machine, where idle-waiting threads stall)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = sample_dataset_path("colin27_aal_2d")
    case = next(c for c in build_manifest(source) if c.case_id == CASE)
    with tempfile.TemporaryDirectory() as folder:
        config = FinetuneConfig.from_dict(dict(data=str(source), out=folder, model="litemedsam", method="decoder"))
        model = build_model("litemedsam")
        cache = EmbeddingCache(4, Path(folder) / "embeddings")
        cached = load_training_images([case], model, config, source, cache)[0]
        pixels = load_training_images([case], model, config, source)[0]
        prepare(model, config)
        set_training_mode(model, True)
        optimizer = make_optimizer(model, config)
        print(f"{CASE}: {cached.n_objects} objects, {torch.get_num_threads()} threads, median of {REPEATS} steps")
        ratios = []
        for rounds in args.rounds:
            step = TrainingStep(model, correction_clicks=rounds - 1)
            for objects in args.objects:
                on_cache, encoding = paired_medians(step, optimizer, cached, pixels, config, cache, objects)
                ratios.append(encoding / on_cache)
                print(
                    f"{objects} prompt(s), {rounds} decoder round(s) a step: cached embedding "
                    f"{on_cache * 1000:.0f} ms, re-encoding {encoding * 1000:.0f} ms, ratio {ratios[-1]:.2f}"
                )
    return report(ratios[0], ">=", 10.0)


if __name__ == "__main__":
    sys.exit(main())
