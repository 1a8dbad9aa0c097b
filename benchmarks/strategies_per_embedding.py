"""Cost of 10 prompt variants on one image relative to one encoder pass (LiteMedSAM, real weights).

The predictor encodes an image once and decodes every prompt against that embedding in one batch
per prompt structure, so running many strategies should cost little more than the encoder.
Prints ``ratio=<time(set_image + 10 prompts, multimask and single)> / <time(encoder pass)>``;
target <= 2.0.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from _target import report

from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.embeddings import EmbeddingCache
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts import centroid_point, tight_box
from samia.transforms import default_preset, to_rgb_uint8
from samia.types import Prompt

REPEATS = 5


def ten_prompts(mask: np.ndarray, rng: np.random.Generator) -> list[Prompt]:
    """Ten prompt variants of the kinds the papers' protocol uses (box, points, negatives, jitter)."""
    box = tight_box(mask)
    centre, _ = centroid_point(mask)
    ys, xs = np.nonzero(mask)
    inside = np.stack([xs, ys], axis=1)[rng.choice(len(xs), 5, replace=False)].astype(float)
    outside = np.stack(np.nonzero(~mask)[::-1], axis=1)[:5].astype(float)
    one = np.ones(1, dtype=np.int64)
    prompts = [
        Prompt(box=box),
        Prompt(points=centre[None], labels=one),
        Prompt(points=inside, labels=np.ones(5, dtype=np.int64)),
        Prompt(points=np.concatenate([inside, outside]), labels=np.r_[np.ones(5), np.zeros(5)].astype(np.int64)),
        Prompt(points=centre[None], labels=one, box=box),
    ]
    for shift in (5, 10, 15, 20, 25):
        jittered = box + rng.uniform(-shift, shift, 4)
        prompts.append(
            Prompt(
                box=np.array(
                    [
                        min(jittered[0], jittered[2]),
                        min(jittered[1], jittered[3]),
                        max(jittered[0], jittered[2]),
                        max(jittered[1], jittered[3]),
                    ]
                )
            )
        )
    return prompts


def main() -> int:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    case = build_manifest(sample_dataset_path("colin27_aal_2d"))[0]
    item = next(iter_slice_items(case))
    rgb = to_rgb_uint8(item.image, default_preset(item.image.modality, item.image.is_rgb))
    prompts = ten_prompts(item.objects[0].mask, np.random.default_rng(0))
    assert len(prompts) == 10
    model = build_model("litemedsam")
    predictor = SamiaPredictor(model, EmbeddingCache(max_items=0))
    predictor.set_image(rgb)  # warm-up
    predictor.predict_batch_both(prompts)

    encoder_times, strategy_times = [], []
    resized = torch.as_tensor(predictor.geometry.resize_image(rgb)).permute(2, 0, 1)[None].float()
    for _ in range(REPEATS):
        start = time.perf_counter()
        with torch.no_grad():
            model.encode(resized)
        encoder_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.set_image(rgb)
        predictor.predict_batch_both(prompts)
        strategy_times.append(time.perf_counter() - start)
    encoder, strategies = float(np.median(encoder_times)), float(np.median(strategy_times))
    print(f"encoder pass: {encoder * 1000:.1f} ms (median of {REPEATS})")
    print(f"set_image + 10 prompts x (multimask, single): {strategies * 1000:.1f} ms")
    print(f"encoder calls: {predictor.encoder_calls} for {REPEATS + 1} set_image calls")
    return report(strategies / encoder, "<=", 2.0)


if __name__ == "__main__":
    sys.exit(main())
