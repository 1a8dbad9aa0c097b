"""Mapping between an image's own pixel grid and a SAM-family model's square input grid.

SAM-family models take a square ``S x S`` input: the image is resized so that its longest side is
``S`` (aspect ratio kept) and padded at the bottom/right. Prompts are scaled the same way, and the
model's low-resolution logits are mapped back to the original grid by undoing both steps (upsample
to ``S x S``, crop the padding, upsample to ``(H, W)``) exactly as segment-anything does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide


@dataclass(frozen=True)
class Letterbox:
    """The resize-longest-side + pad geometry of one image for one model input size.

    Attributes:
        original_shape: ``(H, W)`` of the image, pixels.
        resized_shape: ``(h, w)`` after resizing the longest side to ``input_size``.
        input_size: side ``S`` of the model's square input, pixels.
    """

    original_shape: tuple[int, int]
    resized_shape: tuple[int, int]
    input_size: int

    @classmethod
    def for_shape(cls, original_shape: tuple[int, int], input_size: int) -> "Letterbox":
        height, width = int(original_shape[0]), int(original_shape[1])
        resized = ResizeLongestSide.get_preprocess_shape(height, width, input_size)
        return cls((height, width), (int(resized[0]), int(resized[1])), int(input_size))

    def resize_image(self, image_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> ``(h, w, 3)`` uint8, resized as segment-anything does (bilinear, PIL)."""
        if image_rgb.shape[:2] != self.original_shape:
            raise ValueError(f"image of shape {image_rgb.shape[:2]} does not match {self.original_shape}")
        return ResizeLongestSide(self.input_size).apply_image(image_rgb)

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Factors ``(w / W, h / H)`` that take original ``(x, y)`` pixels to model-input pixels."""
        return (
            self.resized_shape[1] / self.original_shape[1],
            self.resized_shape[0] / self.original_shape[0],
        )

    def points_to_input(self, points: np.ndarray) -> np.ndarray:
        """``(..., 2)`` ``(x, y)`` original pixels -> the same in model-input pixels (float64)."""
        scaled = np.asarray(points, dtype=np.float64).copy()
        scale_x, scale_y = self.scale_xy
        scaled[..., 0] *= scale_x
        scaled[..., 1] *= scale_y
        return scaled

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        """``(..., 4)`` XYXY original pixels -> XYXY model-input pixels (float64)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        return self.points_to_input(boxes.reshape(*boxes.shape[:-1], 2, 2)).reshape(boxes.shape)

    def logits_to_original(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        """Low-resolution logits ``(B, M, L, L)`` -> logits on the original grid ``(B, M, H, W)``.

        Bilinear upsampling to ``S x S``, crop of the padding to ``(h, w)``, bilinear resampling to
        ``(H, W)`` (segment-anything's ``Sam.postprocess_masks``). Threshold at 0 for a mask.
        """
        upsampled = F.interpolate(
            low_res_logits, (self.input_size, self.input_size), mode="bilinear", align_corners=False
        )
        cropped = upsampled[..., : self.resized_shape[0], : self.resized_shape[1]]
        return F.interpolate(cropped, self.original_shape, mode="bilinear", align_corners=False)
