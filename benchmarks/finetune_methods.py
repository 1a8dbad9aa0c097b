"""Fine-tuning methods side by side: trainable parameters and step time, as ratios to decoder-only.

LiteMedSAM (real weights), the bundled slice with 8 structures, the default prompt mix, 4 prompts
and one decoder round a step, one torch thread: for every method one full optimizer step (prompt
sampling, forward, backward, AdamW) is timed (median of 7 after 3 warm-ups), ``decoder`` on its
cached embedding as ``samia finetune`` runs it, the others through the image encoder. Printed per
method: trainable parameters, their share of the model, step time, and both as ratios to
``decoder``. Target (issue 15): S-SAM trains at most 2 % of the parameters decoder-only trains.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _target import report
from finetune_step import CASE, REPEATS, WARM_UP, step_seconds

from samia.data import build_manifest, sample_dataset_path
from samia.embeddings import EmbeddingCache
from samia.finetuning import FinetuneConfig
from samia.finetuning.data import load_training_images
from samia.finetuning.methods import METHODS, make_optimizer, parameter_counts, prepare, set_training_mode
from samia.finetuning.step import TrainingStep
from samia.models import build_model

OBJECTS = 4
RUNS = [(name, False) for name in METHODS] + [("lora", True), ("ssam", True)]
"""``(method, train_decoder)`` of each measured run."""


def measure(method: str, train_decoder: bool, source: Path, folder: Path) -> tuple[dict[str, float], float]:
    """``(parameter counts, median step seconds)`` of one method."""
    case = next(c for c in build_manifest(source) if c.case_id == CASE)
    config = FinetuneConfig.from_dict(
        dict(data=str(source), out=str(folder), model="litemedsam", method=method, train_decoder=train_decoder)
    )
    model = build_model("litemedsam")
    cache = EmbeddingCache(4, folder / f"embeddings-{method}") if METHODS[method].caches_embeddings else None
    image = load_training_images([case], model, config, source, cache)[0]
    prepare(model, config)
    set_training_mode(model, True)
    optimizer = make_optimizer(model, config)
    step = TrainingStep(model, correction_clicks=0)
    times = [step_seconds(step, optimizer, image, config, cache, OBJECTS, r) for r in range(WARM_UP + REPEATS)]
    return parameter_counts(model), float(np.median(times[WARM_UP:]))


def main() -> int:
    torch.set_num_threads(1)
    source = sample_dataset_path("colin27_aal_2d")
    measured = {}
    with tempfile.TemporaryDirectory() as folder:
        for method, train_decoder in RUNS:
            measured[method + ("+decoder" if train_decoder else "")] = measure(
                method, train_decoder, source, Path(folder)
            )
    base_params, base_seconds = measured["decoder"][0]["trainable_parameters"], measured["decoder"][1]
    for name, (counts, seconds) in measured.items():
        print(
            f"{name:14s} trains {counts['trainable_parameters']:>10,} ({100 * counts['trainable_share']:6.2f} % of "
            f"{counts['total_parameters']:,}; x{counts['trainable_parameters'] / base_params:.4f} of decoder), "
            f"step {seconds * 1000:6.0f} ms (x{seconds / base_seconds:.2f})"
        )
    return report(measured["ssam"][0]["trainable_parameters"] / base_params, "<=", 0.02)


if __name__ == "__main__":
    sys.exit(main())
