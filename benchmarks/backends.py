"""LiteMedSAM on every backend and precision this machine runs, against the machine's own limit.

For each (backend, precision): the encoder's time per image and the decoder's time per box prompt
(at the batch size that is fastest for that backend, measured among :data:`BATCHES`), each divided
by its floor (:mod:`_floor`: torch-counted FLOPs / this machine's matmul rate at that precision,
measured in the same run); the medians of :data:`REPEATS`. Then bf16 against fp32 on OpenVINO, object
by object: every bundled 2D slice's objects and the key slice of every object of the bundled 3D
volume, box prompts; the worst object's Dice of its bf16 mask against its fp32 mask.

Targets (issue 28): encoder <= 1.3 x floor, decoder <= 2 x floor (the best backend of each
precision), bf16 vs fp32 Dice >= 0.98 for every object. Exits 1 on any miss.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _floor import Machine, cpu_name, litemedsam_flops
from _results import Row, record
from _target import report_each

from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.metrics import dice
from samia.models import build_model
from samia.models.exported import BACKENDS, cpu_has_bf16
from samia.predictor import SamiaPredictor
from samia.prompts import tight_box
from samia.transforms import default_preset, input_geometry, to_rgb_uint8
from samia.types import Prompt

REPEATS = 5
BATCHES = (1, 8, 32, 64)
PROMPTS = 64


def _slices() -> list:
    """Every bundled 2D slice, and each object's largest slice of the bundled 3D volume."""
    items = []
    for dataset in ("colin27_aal_2d", "fundus_vessels_2d", "colin27_aal_3d"):
        for case in build_manifest(sample_dataset_path(dataset)):
            case_items = list(iter_slice_items(case))
            if dataset.endswith("3d"):
                largest = {}
                for item in case_items:
                    for obj in item.objects:
                        if obj.mask.sum() > largest.get(obj.label, (0, None))[0]:
                            largest[obj.label] = (int(obj.mask.sum()), item)
                case_items = list({id(item): item for _, item in largest.values()}.values())
            items.extend(case_items)
    return items


def _rgb(item) -> np.ndarray:
    return to_rgb_uint8(item.image, default_preset(item.image.modality, item.image.is_rgb))


def encoder_seconds(model, rgb: np.ndarray) -> float:
    resized = input_geometry(model.input_pipeline, rgb.shape[:2], model.input_size).resize_image(rgb)
    model.embed(resized)  # warm-up
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        model.embed(resized)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def decoder_seconds(model, rgb: np.ndarray) -> tuple[float, int]:
    """``(seconds per prompt, batch size)`` at the fastest batch size of :data:`BATCHES`."""
    boxes = [Prompt(box=np.array([40.0 + i % 8, 50.0 + i % 3, 120.0, 140.0 + i % 5])) for i in range(PROMPTS)]
    best = (float("inf"), 0)
    for batch in BATCHES:
        predictor = SamiaPredictor(model, max_batch=batch)
        predictor.set_image(rgb)
        predictor.predict_batch(boxes[:batch], False)  # warm-up
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            predictor.predict_batch(boxes, False)
            times.append((time.perf_counter() - started) / PROMPTS)
        best = min(best, (float(np.median(times)), batch))
    return best


def box_masks(model, items: list) -> list[np.ndarray]:
    """Each object's mask from its tight box, in the order of ``items`` and their objects."""
    predictor = SamiaPredictor(model, max_batch=64)
    masks = []
    for item in items:
        predictor.set_image(_rgb(item))
        prompts = [Prompt(box=tight_box(obj.mask)) for obj in item.objects]
        masks.extend(prediction.masks[0] for prediction in predictor.predict_batch(prompts, False))
    return masks


def main() -> int:
    warnings.simplefilter("ignore")  # the samples' own input warnings (disconnected vessels) are not the point
    with_bf16 = cpu_has_bf16()
    machine = Machine.measure(with_bf16)
    flops = litemedsam_flops()
    print(f"{cpu_name()}; {machine.describe()}")
    print(f"LiteMedSAM: encoder {flops.encoder_gflop:.1f} GFLOP per image, decoder {flops.decoder_gflop:.2f} per box")
    items = _slices()
    rgb = _rgb(items[0])
    print("| backend | precision | encoder (s) | / floor | decoder per prompt (ms) | best batch | / floor |")
    print("|---|---|---|---|---|---|---|")
    ratios: dict[str, dict[str, tuple[float, float]]] = {}
    rows = []
    masks = {}
    for backend, precisions in BACKENDS.items():
        for precision in precisions:
            if precision == "bf16" and not with_bf16:
                continue
            model = build_model("litemedsam", backend=backend, precision=precision)
            encoder = encoder_seconds(model, rgb)
            decoder, batch = decoder_seconds(model, rgb)
            rate = machine.rate(precision)
            encoder_ratio = encoder / (flops.encoder_gflop / rate)
            decoder_ratio = decoder / (flops.decoder_gflop / rate)
            ratios.setdefault(precision, {})[backend] = (encoder_ratio, decoder_ratio)
            rows.append(
                Row(
                    f"encode one image (256 px) / decode one box, {backend} {precision}",
                    f"{encoder:.2f} s / {decoder * 1000:.0f} ms (batches of {batch})",
                    f"{encoder_ratio:.2f}x / {decoder_ratio:.2f}x",
                )
            )
            print(
                f"| {backend} | {precision} | {encoder:.3f} | {encoder_ratio:.2f} | {decoder * 1000:.1f} | {batch} | "
                f"{decoder_ratio:.2f} |"
            )
            if backend == "openvino":
                masks[precision] = box_masks(model, items)
    checks = []
    for precision, by_backend in ratios.items():
        checks.append((f"encoder {precision}, best / floor", min(e for e, _ in by_backend.values()), "<=", 1.3))
        checks.append((f"decoder {precision}, best / floor", min(d for _, d in by_backend.values()), "<=", 2.0))
    if "bf16" in masks:
        agreement = [dice(a, b) if a.any() or b.any() else 1.0 for a, b in zip(masks["fp32"], masks["bf16"])]
        print(
            f"bf16 vs fp32 (openvino), {len(agreement)} objects: worst Dice {min(agreement):.4f}, "
            f"{sum(d < 0.98 for d in agreement)} below 0.98"
        )
        checks.append(("bf16 vs fp32, worst object's Dice", min(agreement), ">=", 0.98))
        rows.append(
            Row(
                f"bf16 masks against fp32 masks, {len(agreement)} bundled objects",
                f"worst Dice {min(agreement):.2f}",
                "target 0.98: bf16 is never chosen unasked",
            )
        )
    else:
        print("(bf16 not measured: this CPU has no bf16 instructions)")
    record("backends", rows)
    return report_each(checks)


if __name__ == "__main__":
    sys.exit(main())
