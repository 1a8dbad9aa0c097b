"""Cost of a decoder training step that re-encodes its image relative to one on a cached embedding.

LiteMedSAM (real weights), a bundled real MRI slice, the ``decoder`` method with its default prompt
mix and one corrective click round: one optimizer step (prompt sampling, forward, backward, AdamW)
with the image embedding read from the run's embedding cache, against the same step (same prompts)
running the frozen image encoder first, as decoder fine-tuning without a cache would.

A step trains ``--objects`` object prompts of one image (default 1, the MedSAM training unit of
one image and one prompt); the decoder's cost grows with the number of prompts while the
encoder's does not, so the ratio falls as prompts per image rise (printed for every count up to
``--max-objects``). Prints ``ratio=<time(re-encoding step)> / <time(cached step)>`` for
``--objects``; target >= 10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from samia.data import build_manifest, sample_dataset_path
from samia.embeddings import EmbeddingCache
from samia.finetune import FinetuneConfig
from samia.finetune.data import TrainingImage, load_training_images
from samia.finetune.methods import prepare, set_training_mode
from samia.finetune.prompts import TrainingPromptSampler
from samia.finetune.step import TrainingStep, make_step_inputs
from samia.models import build_model

REPEATS = 5
CASE = "colin27_axial_063"
"""A slice with 8 structures (caudate, putamen, hippocampus, cerebellum, left and right)."""


def step_seconds(step: TrainingStep, optimizer: torch.optim.Optimizer, image: TrainingImage, config: FinetuneConfig,
                 cache: EmbeddingCache | None, objects: int) -> float:
    """Median wall time of one full training step over :data:`REPEATS` runs (after one warm-up)."""
    sampler = TrainingPromptSampler.from_config(config)
    times = []
    for repeat in range(REPEATS + 1):
        started = time.perf_counter()
        rng = np.random.default_rng(repeat)
        inputs = make_step_inputs(image, step.model, sampler, objects, rng, cache)
        optimizer.zero_grad(set_to_none=True)
        step(inputs, rng).backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--max-objects", type=int, default=8)
    args = parser.parse_args()
    source = sample_dataset_path("colin27_aal_2d")
    case = next(c for c in build_manifest(source) if c.case_id == CASE)
    with tempfile.TemporaryDirectory() as folder:
        config = FinetuneConfig(data=str(source), out=folder, model="litemedsam", method="decoder")
        model = build_model("litemedsam")
        cache = EmbeddingCache(4, Path(folder) / "embeddings")
        cached = load_training_images([case], model, config, source, cache)[0]
        pixels = load_training_images([case], model, config, source)[0]
        prepare(model, config)
        set_training_mode(model, True)
        step = TrainingStep(model, config.correction_clicks)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
        print(f"{CASE}: {cached.n_objects} objects, {config.correction_clicks + 1} decoder rounds a step, "
              f"{torch.get_num_threads()} threads")
        ratios = {}
        for objects in sorted({args.objects, *range(1, min(args.max_objects, cached.n_objects) + 1)}):
            on_cache = step_seconds(step, optimizer, cached, config, cache, objects)
            encoding = step_seconds(step, optimizer, pixels, config, None, objects)
            ratios[objects] = encoding / on_cache
            print(f"{objects} prompt(s) a step: cached embedding {on_cache * 1000:.0f} ms, "
                  f"re-encoding {encoding * 1000:.0f} ms, ratio {ratios[objects]:.2f}")
    print(f"ratio={ratios[args.objects]:.3f}")


if __name__ == "__main__":
    main()
