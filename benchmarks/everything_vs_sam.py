"""samia's everything mode on an exported backend vs segment-anything's ``SamAutomaticMaskGenerator``
on torch (LiteMedSAM weights, a 32 x 32 grid).

Both run the same model on the same image with the same settings and the same image embedding
(the reference predictor is handed samia's embedding, so the encoder is not part of either time);
samia decodes on ``--backend`` (default: onnxruntime, the fastest decoder here), the reference on torch. Checks that every
reference mask of >= 50 px has a samia mask with IoU >= 0.95 and prints
``ratio = reference time / samia time``; target >= 5 (issue 12).

LiteMedSAM was trained with boxes only: its single-point masks are near-empty (predicted IoU about
0.15, stability 0), so segment-anything's default thresholds (0.88 / 0.95) keep no mask at all and
both sides would only time the decoder. The benchmark therefore uses permissive thresholds (below)
so that masks survive filtering and NMS.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _results import Row, record
from _target import report
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

from samia.auto import EverythingSettings, generate_everything, iou_matrix
from samia.data import build_manifest, iter_slice_items, sample_dataset_path
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import default_preset, to_rgb_uint8

REPEATS = 1
MIN_AREA = 50


class SharedEmbeddingPredictor(SamPredictor):
    """segment-anything's predictor, handed an embedding instead of computing it."""

    def __init__(self, sam: Sam, embedding: torch.Tensor, input_size: tuple[int, int]) -> None:
        super().__init__(sam)
        self._shared = embedding
        self._input_size = input_size

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        self.reset_image()
        self.original_size = image.shape[:2]
        self.input_size = self._input_size
        self.features = self._shared
        self.is_image_set = True


def main() -> int:
    case = build_manifest(sample_dataset_path("colin27_aal_2d"))[3]
    item = next(iter_slice_items(case))
    rgb = to_rgb_uint8(item.image, default_preset(item.image.modality, item.image.is_rgb))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="onnxruntime", choices=["torch", "onnxruntime", "openvino"])
    backend = parser.parse_args().backend
    # the reference generator uses SAM's pipeline, so samia runs the model with it too
    predictor = SamiaPredictor(build_model("litemedsam", input_pipeline="sam", backend=backend))
    predictor.set_image(rgb)
    settings = EverythingSettings(points_per_side=32, pred_iou_thresh=0.15, stability_score_thresh=0.0)

    model = build_model("litemedsam", input_pipeline="sam")
    sam = Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder).eval()
    embedding = torch.from_numpy(predictor.image_embedding)
    reference_predictor = SharedEmbeddingPredictor(sam, embedding, predictor.geometry.resized_shape)
    reference = SamAutomaticMaskGenerator(
        sam,
        points_per_side=settings.points_per_side,
        points_per_batch=settings.points_per_batch,
        pred_iou_thresh=settings.pred_iou_thresh,
        stability_score_thresh=settings.stability_score_thresh,
        stability_score_offset=settings.stability_score_offset,
        box_nms_thresh=settings.box_nms_thresh,
    )
    reference.predictor = reference_predictor

    ours_times, reference_times = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        ours = generate_everything(predictor, settings)
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = reference.generate(rgb)
        reference_times.append(time.perf_counter() - start)
    reference_masks = np.stack([r["segmentation"] for r in theirs]) if theirs else np.zeros((0, *rgb.shape[:2]), bool)
    # masks under MIN_AREA pixels (LiteMedSAM's point masks are mostly 1-10 px specks) flip with
    # float rounding of logits near 0 and are excluded from the IoU check, as objects under 50 px
    # are excluded from evaluation
    reference_masks = reference_masks[reference_masks.sum(axis=(1, 2)) >= MIN_AREA]
    ours_masks = ours.masks[ours.masks.sum(axis=(1, 2)) >= MIN_AREA]
    best = (
        iou_matrix(reference_masks, ours_masks).max(axis=1)
        if len(reference_masks) and len(ours_masks)
        else np.zeros(len(reference_masks))
    )
    matched = int((best >= 0.95).sum())
    ours_time, reference_time = float(np.median(ours_times)), float(np.median(reference_times))
    print(f"image {case.case_id} {rgb.shape[:2]}, grid {settings.points_per_side}x{settings.points_per_side}")
    print(
        f"masks: samia {len(ours)}, segment-anything {len(theirs)}; of >= {MIN_AREA} px: samia {len(ours_masks)}, "
        f"segment-anything {len(reference_masks)}, reference masks matched at IoU>=0.95: {matched}/{len(reference_masks)}"
    )
    print(
        f"samia ({backend}) {ours_time * 1000:.0f} ms, segment-anything (torch) {reference_time * 1000:.0f} ms "
        f"(median of {REPEATS})"
    )
    if matched != len(reference_masks):
        raise SystemExit("a reference mask has no samia mask at IoU >= 0.95")
    record(
        "everything_vs_sam",
        [
            Row(
                f"everything mode ({settings.points_per_side} x {settings.points_per_side}) against "
                "segment-anything's generator",
                f"{ours_time * 1000:.0f} ms against {reference_time * 1000:.0f} ms",
                f"{reference_time / ours_time:.1f}x faster, {matched}/{len(reference_masks)} masks matched",
            )
        ],
    )
    return report(reference_time / ours_time, ">=", 5.0)


if __name__ == "__main__":
    sys.exit(main())
