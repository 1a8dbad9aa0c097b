"""Everything mode: segment an image with no prompt from a person, on a grid of point prompts.

The rule is segment-anything's ``SamAutomaticMaskGenerator`` (single crop layer): one positive
point per grid cell, three candidate masks per point, keep candidates whose predicted IoU exceeds
``pred_iou_thresh`` and whose stability score reaches ``stability_score_thresh``, then box NMS.
Two things make it cheaper without changing the result: the predicted-IoU filter runs on the
low-resolution decoder output *before* masks are upsampled to the image (the reference upsamples
every candidate first), and masks stay boolean arrays (no run-length encoding round trip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from segment_anything.utils.amg import batched_mask_to_box, build_point_grid, calculate_stability_score
from torchvision.ops.boxes import batched_nms

from samia.errors import ConfigurationError
from samia.predictor import SamiaPredictor
from samia.settings_groups import SettingsGroup
from samia.types import Prompt


@dataclass(frozen=True)
class EverythingSettings(SettingsGroup):
    """Settings of everything mode (segment-anything's defaults).

    Attributes:
        points_per_side: the grid has ``points_per_side ** 2`` points, at cell centres.
        points_per_batch: points decoded per decoder call.
        pred_iou_thresh: keep candidates whose predicted IoU is above this (0 disables).
        stability_score_thresh: keep candidates whose stability score is at least this (0 disables).
        stability_score_offset: logit offset of the stability score.
        box_nms_thresh: IoU of the masks' boxes above which the lower-scoring mask is dropped.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ConfigurationError("points per side and per batch must be >= 1")


@dataclass(frozen=True)
class GeneratedMasks:
    """The masks everything mode kept for one image, best-scoring first after NMS.

    Attributes:
        masks: ``(K, H, W)`` bool on the image grid (``K`` may be 0).
        predicted_iou: ``(K,)`` float32.
        stability_score: ``(K,)`` float32.
        points: ``(K, 2)`` float64 ``(x, y)`` grid point that produced each mask.
        boxes: ``(K, 4)`` float64 XYXY box of each mask (inclusive pixels).
    """

    masks: np.ndarray
    predicted_iou: np.ndarray
    stability_score: np.ndarray
    points: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.masks.shape[0])


def grid_points(shape: tuple[int, int], points_per_side: int) -> np.ndarray:
    """``(n*n, 2)`` float64 ``(x, y)`` cell-centre points over an image of ``shape`` ``(H, W)``."""
    return build_point_grid(points_per_side) * np.array([shape[1], shape[0]], dtype=np.float64)


@torch.no_grad()
def generate_everything(
    predictor: SamiaPredictor, settings: EverythingSettings = EverythingSettings()
) -> GeneratedMasks:
    """Everything mode on the predictor's current image (call ``set_image`` first)."""
    geometry = predictor.geometry
    threshold = predictor.model.mask_threshold
    points = grid_points(geometry.original_shape, settings.points_per_side)
    kept_masks, kept_iou, kept_stability, kept_points = [], [], [], []
    for start in range(0, len(points), settings.points_per_batch):
        batch = points[start : start + settings.points_per_batch]
        prompts = [Prompt(points=p[None], labels=np.ones(1, dtype=np.int64)) for p in batch]
        low_res, iou = (torch.from_numpy(array) for array in predictor.decode_low_res(prompts))
        low_res, iou = low_res[:, 1:].flatten(0, 1), iou[:, 1:].flatten(0, 1)  # the 3 multimask candidates
        batch_points = torch.as_tensor(np.repeat(batch, 3, axis=0))
        keep = (
            iou > settings.pred_iou_thresh if settings.pred_iou_thresh > 0 else torch.ones_like(iou, dtype=torch.bool)
        )
        if not keep.any():
            continue
        logits = torch.from_numpy(geometry.logits_to_original(low_res[keep].numpy()))
        stability = calculate_stability_score(logits, threshold, settings.stability_score_offset)
        stable = (
            stability >= settings.stability_score_thresh
            if settings.stability_score_thresh > 0
            else torch.ones_like(stability, dtype=torch.bool)
        )
        kept_masks.append((logits[stable] > threshold).cpu())
        kept_iou.append(iou[keep][stable].float().cpu())
        kept_stability.append(stability[stable].float().cpu())
        kept_points.append(batch_points[keep.cpu()][stable.cpu()])
    height, width = geometry.original_shape
    if not kept_masks or sum(len(m) for m in kept_masks) == 0:
        return GeneratedMasks(
            np.zeros((0, height, width), bool),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 2)),
            np.zeros((0, 4)),
        )
    masks, iou, stability = torch.cat(kept_masks), torch.cat(kept_iou), torch.cat(kept_stability)
    boxes = batched_mask_to_box(masks)
    order = batched_nms(boxes.float(), iou, torch.zeros(len(boxes)), iou_threshold=settings.box_nms_thresh)
    return GeneratedMasks(
        masks=masks[order].numpy(),
        predicted_iou=iou[order].numpy(),
        stability_score=stability[order].numpy(),
        points=torch.cat(kept_points)[order].numpy().astype(np.float64),
        boxes=boxes[order].numpy().astype(np.float64),
    )
