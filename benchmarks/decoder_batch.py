"""Decoding many prompts of one image: one at a time in torch against batches of 64 on each backend.

LiteMedSAM (the bundled weights) on a bundled slice, 64 different boxes. Prints the time per prompt
of each way and ``ratio = torch one-at-a-time per prompt / best batched per prompt``; target >= 3
(issue 12). Both include the shared post-processing (logits back to the image, threshold).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _results import Row, record
from _target import report

from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.models import build_model
from samia.models.exported import BACKENDS, cpu_has_bf16
from samia.predictor import SamiaPredictor
from samia.transforms import default_preset, to_rgb_uint8
from samia.types import Prompt

PROMPTS = 64
REPEATS = 3


def per_prompt_seconds(backend: str, precision: str, rgb: np.ndarray, batch: int) -> float:
    """Median over :data:`REPEATS` of the time to decode the 64 boxes ``batch`` at a time, per prompt."""
    predictor = SamiaPredictor(build_model("litemedsam", backend=backend, precision=precision), max_batch=batch)
    predictor.set_image(rgb)
    boxes = [Prompt(box=np.array([40.0 + i % 8, 50.0 + i % 3, 120.0, 140.0 + i % 5])) for i in range(PROMPTS)]
    predictor.predict_batch(boxes[:batch], False)  # warm-up
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        if batch == 1:
            for box in boxes:
                predictor.predict_batch([box], False)
        else:
            predictor.predict_batch(boxes, False)
        times.append((time.perf_counter() - started) / PROMPTS)
    return float(np.median(times))


def main() -> int:
    case = build_manifest(sample_dataset_path("colin27_aal_2d"))[0]
    item = next(iter_slice_items(case))
    rgb = to_rgb_uint8(item.image, default_preset(item.image.modality, item.image.is_rgb))
    single = per_prompt_seconds("torch", "fp32", rgb, 1)
    print(f"torch fp32, one prompt at a time: {single * 1000:.1f} ms per prompt")
    batched = {}
    for backend, precisions in BACKENDS.items():
        for precision in precisions:
            if precision == "bf16" and not cpu_has_bf16():
                continue
            batched[backend, precision] = per_prompt_seconds(backend, precision, rgb, PROMPTS)
            print(
                f"{backend} {precision}, batches of {PROMPTS}: {batched[backend, precision] * 1000:.1f} ms per prompt"
            )
    best = min(batched, key=batched.__getitem__)
    record(
        "decoder_batch",
        [
            Row(
                f"decode {PROMPTS} boxes batched ({' '.join(best)}) against one at a time (torch)",
                f"{batched[best] * 1000:.0f} ms against {single * 1000:.0f} ms per box",
                f"{single / batched[best]:.1f}x faster",
            )
        ],
    )
    return report(single / batched[best], ">=", 3.0)


if __name__ == "__main__":
    sys.exit(main())
