"""Cost of 10 corrective clicks relative to 1 click on one embedding (LiteMedSAM, real weights).

Every click is one decoder pass plus the error-region search; the encoder never reruns. The
model runs on ``--backend`` (default: onnxruntime, this CPU's fastest decoder). Prints
``ratio=<time(10 clicks)> / <time(1 click)>``; target <= 10.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _target import report

from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts.clicks import simulate_clicks
from samia.transforms import default_preset, to_rgb_uint8

REPEATS = 3


def timed(predictor: SamiaPredictor, truths: list[np.ndarray], clicks: int) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        simulate_clicks(predictor, truths, clicks, "single")
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    case = build_manifest(sample_dataset_path("colin27_aal_2d"))[4]
    item = next(iter_slice_items(case))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "openvino"])
    predictor = SamiaPredictor(build_model("litemedsam", backend=parser.parse_args().backend))
    predictor.set_image(to_rgb_uint8(item.image, default_preset(item.image.modality, item.image.is_rgb)))
    truths = [obj.mask for obj in item.objects]
    timed(predictor, truths, 1)  # warm-up
    one, ten = timed(predictor, truths, 1), timed(predictor, truths, 10)
    print(f"{len(truths)} objects of {case.case_id}; 1 click: {one * 1000:.0f} ms, 10 clicks: {ten * 1000:.0f} ms")
    print(f"encoder calls: {predictor.encoder_calls}")
    return report(ten / one, "<=", 10.0)


if __name__ == "__main__":
    sys.exit(main())
