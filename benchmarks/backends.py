"""LiteMedSAM on every backend and precision this machine runs: encoder time, decoder time per prompt
(in a batch of 64), and box Dice against the truth and against torch on the bundled 2D samples.

Prints a table (the one in docs/guides/cpu.md) and ``ratio = torch encoder time / best backend encoder time``; target
>= 4 (issue 12), reachable only where OpenVINO has bf16 kernels (AVX-512 bf16 / AMX): on an AVX2 CPU
every backend runs the same fp32 kernels.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _target import report

from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.metrics import dice
from samia.models import build_model
from samia.models.exported import BACKENDS, cpu_has_bf16
from samia.predictor import SamiaPredictor
from samia.prompts import tight_box
from samia.transforms import default_preset, input_geometry, to_rgb_uint8
from samia.types import Prompt

REPEATS = 3


def _items():
    for case in build_manifest(sample_dataset_path("colin27_aal_2d")):
        yield from iter_slice_items(case)


def measure(backend: str, precision: str) -> dict[str, float]:
    model = build_model("litemedsam", backend=backend, precision=precision)
    predictor = SamiaPredictor(model, max_batch=64)
    items = list(_items())
    rgb = to_rgb_uint8(items[0].image, default_preset("MR", False))
    resized = input_geometry(model.input_pipeline, rgb.shape[:2], model.input_size).resize_image(rgb)
    model.embed(resized)  # warm-up
    started = time.perf_counter()
    for _ in range(REPEATS):
        model.embed(resized)
    encoder = (time.perf_counter() - started) / REPEATS
    predictor.set_image(rgb)
    boxes = [Prompt(box=np.array([40.0 + i % 8, 50.0, 120.0, 140.0 + i % 5])) for i in range(64)]
    predictor.predict_batch(boxes[:2], False)
    started = time.perf_counter()
    predictor.predict_batch(boxes, False)
    decoder = (time.perf_counter() - started) / len(boxes)
    scores, masks = [], []
    for item in items:
        predictor.set_image(to_rgb_uint8(item.image, default_preset("MR", False)))
        prompts = [Prompt(box=tight_box(obj.mask)) for obj in item.objects]
        for obj, prediction in zip(item.objects, predictor.predict_batch(prompts, False)):
            scores.append(dice(prediction.masks[0], obj.mask))
            masks.append(prediction.masks[0])
    return {"encoder_s": encoder, "decoder_ms": decoder * 1000, "dice": float(np.mean(scores)), "masks": masks}


def main() -> int:
    combos = [(b, p) for b, precisions in BACKENDS.items() for p in precisions if p != "bf16" or cpu_has_bf16()]
    results = {combo: measure(*combo) for combo in combos}
    torch_masks = results[("torch", "fp32")]["masks"]
    print(
        "| backend | precision | encoder (s) | decoder per prompt, batch 64 (ms) | box Dice | Dice vs torch: largest per-object difference |"
    )
    print("|---|---|---|---|---|---|")
    for (backend, precision), row in results.items():
        differences = [abs(dice(a, b) - 1.0) for a, b in zip(row["masks"], torch_masks)]
        print(
            f"| {backend} | {precision} | {row['encoder_s']:.2f} | {row['decoder_ms']:.1f} | {row['dice']:.4f} | "
            f"{max(differences):.4f} |"
        )
    if not cpu_has_bf16():
        print("(bf16 not measured: this CPU has no bf16 instructions)")
    best = min(row["encoder_s"] for combo, row in results.items() if combo[0] != "torch")
    return report(results[("torch", "fp32")]["encoder_s"] / best, ">=", 4.0)


if __name__ == "__main__":
    sys.exit(main())
