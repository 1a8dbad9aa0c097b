"""Check samia's CUDA path against the CPU: same masks from the predictor, everything mode and clicks.

Run on a machine with a GPU: ``python scripts/gpu_smoke.py``. Prints encoder/decoder timings on each
device and the IoU between CPU and GPU masks (expected >= 0.99: float differences only).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from samia.auto import EverythingSettings, generate_everything, iou_matrix
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts import positive_points, tight_box
from samia.prompts.clicks import simulate_clicks
from samia.types import Prompt


def synthetic_image(rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """A (300, 400, 3) uint8 image with three bright ellipses and their masks."""
    yy, xx = np.mgrid[:300, :400]
    image = rng.integers(0, 60, (300, 400), dtype=np.int64)
    masks = []
    for cy, cx, ry, rx in ((80, 100, 40, 60), (200, 260, 50, 35), (150, 330, 20, 25)):
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image[mask] += 150
        masks.append(mask)
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2), masks


def run(device: str, image: np.ndarray, masks: list[np.ndarray]) -> dict:
    predictor = SamiaPredictor(build_model("litemedsam", device=device))
    predictor.set_image(image)
    predictor.reset()
    predictor.cache.clear()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    predictor.set_image(image)
    if device == "cuda":
        torch.cuda.synchronize()
    encode = time.perf_counter() - start
    prompts = [Prompt(box=tight_box(m)) for m in masks] + [
        Prompt(points=positive_points(m, 1)[0], labels=np.ones(1, np.int64)) for m in masks
    ]
    predictor.predict_batch(prompts, multimask_output=False)  # warm-up (kernel loading)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    predictions = predictor.predict_batch(prompts, multimask_output=False)
    decode = time.perf_counter() - start
    everything = generate_everything(predictor, EverythingSettings(points_per_side=16))
    clicks = simulate_clicks(predictor, masks, 5, "predicted_iou")
    return {
        "encode_s": encode,
        "decode_s": decode,
        "masks": np.stack([p.masks[0] for p in predictions]),
        "everything": everything.masks,
        "clicks": np.stack([trajectory[-1].mask for trajectory in clicks]),
    }


def main() -> None:
    image, masks = synthetic_image(np.random.default_rng(0))
    cpu = run("cpu", image, masks)
    gpu = run("cuda", image, masks)
    print(f"device: {torch.cuda.get_device_name(0)}")
    for name in ("encode_s", "decode_s"):
        print(f"{name}: cpu {cpu[name] * 1000:.1f} ms, cuda {gpu[name] * 1000:.1f} ms")
    boxes = len(masks)  # box prompts first; LiteMedSAM's point masks are near-empty (box-trained)
    prompt_iou = np.diag(iou_matrix(cpu["masks"][:boxes], gpu["masks"][:boxes]))
    print(
        f"point-prompt mask areas: cpu {cpu['masks'][boxes:].sum((1, 2)).tolist()}, cuda {gpu['masks'][boxes:].sum((1, 2)).tolist()}"
    )
    click_iou = np.diag(iou_matrix(cpu["clicks"], gpu["clicks"]))
    print(f"box-prompt masks CPU vs CUDA IoU: min {prompt_iou.min():.4f}")
    print(f"click masks CPU vs CUDA IoU: min {click_iou.min():.4f}")
    print(f"everything masks: cpu {len(cpu['everything'])}, cuda {len(gpu['everything'])}")
    if len(cpu["everything"]) and len(gpu["everything"]):
        best = iou_matrix(cpu["everything"], gpu["everything"]).max(axis=1)
        print(f"everything CPU masks matched on CUDA at IoU >= 0.95: {(best >= 0.95).sum()}/{len(best)}")
    if prompt_iou.min() < 0.99:
        raise SystemExit("CUDA masks differ from CPU masks")


if __name__ == "__main__":
    main()
