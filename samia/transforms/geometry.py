"""Mapping between an image's own pixel grid and a SAM-family model's square input grid.

Each model family was released with its own inference script, and the scripts disagree on how an
image and its prompts reach the model and how the answer comes back. samia implements each one as
an *input pipeline* and runs a model with its own by default (``PromptableSegmenter.input_pipeline``):

``sam`` (segment-anything's ``SamPredictor``; SAM ViT-B/L/H)
    Resize the longest side to ``S`` (aspect kept; the other side ``int(side * S / longest + 0.5)``)
    with PIL bilinear, pad bottom/right. Points and boxes are scaled per axis by ``(w / W, h / H)``
    (float). Low-res logits: bilinear to ``S x S``, crop the padding, bilinear to ``(H, W)``,
    threshold 0.
``litemedsam`` (``CVPR24_LiteMedSAM_infer.py`` of the MedSAM repository)
    The same resized shape and padding, but resized with OpenCV's ``INTER_AREA``. Boxes are scaled
    by ``S / max(H, W)`` and truncated to integers (``int(box * 256 / max(H, W))``); points, which
    the reference never takes, are scaled by the same factor without truncation. Low-res logits
    (already ``S x S``): crop, bilinear to ``(H, W)``, sigmoid > 0.5 (= logits > 0).
``medsam`` (``MedSAM_Inference.py``)
    Stretch to ``S x S`` (aspect not kept) with ``skimage.transform.resize(order=3,
    preserve_range=True, anti_aliasing=True)`` then ``astype(uint8)``; no padding. Boxes and points
    are scaled by ``(S / W, S / H)`` (float). Low-res logits: sigmoid, bilinear straight to
    ``(H, W)``, probability > 0.5. Interpolating probabilities is not interpolating logits, so
    :meth:`Stretch.logits_to_original` returns the logit of the interpolated probability: ``> 0``
    on it is exactly the reference's ``> 0.5``.

Every geometry maps prompts into the model frame and the model's low-res logits back to the
original grid; the predictor, everything mode, click simulation and fine-tuning use them through
:func:`input_geometry` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

InputPipeline = Literal["sam", "litemedsam", "medsam"]
INPUT_PIPELINES: tuple[str, ...] = ("sam", "litemedsam", "medsam")

_PROBABILITY_EPS = 1e-12
"""Probabilities are clamped to ``[eps, 1 - eps]`` before the logit (finite logits)."""


@dataclass(frozen=True)
class InputGeometry(ABC):
    """The geometry of one image for one model input size under one input pipeline.

    Attributes:
        original_shape: ``(H, W)`` of the image, pixels.
        resized_shape: ``(h, w)`` of the resized image inside the ``S x S`` input (the rest is
            zero padding); ``(S, S)`` when the pipeline stretches.
        input_size: side ``S`` of the model's square input, pixels.
    """

    original_shape: tuple[int, int]
    resized_shape: tuple[int, int]
    input_size: int

    pipeline: ClassVar[str]

    @classmethod
    def for_shape(cls, original_shape: tuple[int, int], input_size: int) -> InputGeometry:
        height, width = int(original_shape[0]), int(original_shape[1])
        return cls((height, width), cls.resized_shape_for(height, width, int(input_size)), int(input_size))

    @staticmethod
    def resized_shape_for(height: int, width: int, input_size: int) -> tuple[int, int]:
        """Longest side to ``input_size``, the other ``int(side * scale + 0.5)`` (all three scripts)."""
        resized = ResizeLongestSide.get_preprocess_shape(height, width, input_size)
        return int(resized[0]), int(resized[1])

    def resize_image(self, image_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> ``(h, w, 3)`` uint8 as the pipeline's reference script resizes."""
        if image_rgb.shape[:2] != self.original_shape:
            raise ValueError(f"image of shape {image_rgb.shape[:2]} does not match {self.original_shape}")
        return self._resize(image_rgb)

    @abstractmethod
    def _resize(self, image_rgb: np.ndarray) -> np.ndarray: ...

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Factors ``(sx, sy)`` that take original ``(x, y)`` pixels to model-input pixels."""
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

    def boxes_from_input(self, boxes: np.ndarray) -> np.ndarray:
        """``(..., 4)`` XYXY model-input pixels -> original pixels that :meth:`boxes_to_input` takes
        back to exactly these model-input values (float64)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        scale_x, scale_y = self.scale_xy
        return boxes / np.array([scale_x, scale_y, scale_x, scale_y])

    def mask_to_input(self, mask: np.ndarray) -> np.ndarray:
        """``(H, W)`` bool mask -> ``(S, S)`` bool mask in the model frame: resized to the resized
        shape with OpenCV's ``INTER_AREA`` as a 0/1 uint8 image (a pixel is set where at least half of
        the area it covers is), zero-padded bottom/right, as ``CVPR24_LiteMedSAM_infer.py`` resizes
        the previous slice's mask before it takes its box."""
        import cv2

        if mask.shape != self.original_shape:
            raise ValueError(f"mask of shape {mask.shape} does not match {self.original_shape}")
        height, width = self.resized_shape
        resized = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_AREA)
        framed = np.zeros((self.input_size, self.input_size), dtype=bool)
        framed[:height, :width] = resized > 0
        return framed

    def logits_to_original(self, low_res_logits: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Low-resolution logits ``(..., L, L)`` (e.g. ``(B, M, L, L)``) -> logits on the original grid
        ``(..., H, W)``, float32; a numpy array in gives a numpy array out.

        Bilinear upsampling to ``S x S``, crop of the padding to ``(h, w)``, bilinear resampling to
        ``(H, W)`` (segment-anything's ``Sam.postprocess_masks``; for LiteMedSAM ``L = S`` and the
        first step is the identity). Threshold at 0 for a mask.
        """
        if isinstance(low_res_logits, np.ndarray):
            return self.logits_to_original(torch.as_tensor(low_res_logits, dtype=torch.float32)).numpy()
        if low_res_logits.ndim != 4:
            leading = low_res_logits.shape[:-2]
            flat = low_res_logits.reshape(1, -1, *low_res_logits.shape[-2:])
            return self.logits_to_original(flat).reshape(*leading, *self.original_shape)
        return self._to_original(low_res_logits)

    def _to_original(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        if low_res_logits.shape[-1] != self.input_size:
            low_res_logits = F.interpolate(
                low_res_logits, (self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        cropped = low_res_logits[..., : self.resized_shape[0], : self.resized_shape[1]]
        return F.interpolate(cropped, self.original_shape, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class Letterbox(InputGeometry):
    """segment-anything's geometry: PIL bilinear resize of the longest side, zero padding."""

    pipeline: ClassVar[str] = "sam"

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        return ResizeLongestSide(self.input_size).apply_image(image_rgb)


@dataclass(frozen=True)
class AreaLetterbox(InputGeometry):
    """LiteMedSAM's reference geometry: ``cv2.INTER_AREA`` resize, integer box scaling."""

    pipeline: ClassVar[str] = "litemedsam"

    @property
    def scale(self) -> float:
        """``S / max(H, W)``, the one factor of both axes."""
        return self.input_size / max(self.original_shape)

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.scale, self.scale

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        import cv2  # imported here: only this pipeline needs OpenCV

        height, width = self.resized_shape
        return cv2.resize(np.ascontiguousarray(image_rgb), (width, height), interpolation=cv2.INTER_AREA)

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        """``int(box * S / max(H, W))`` per coordinate (truncation toward zero), as float64."""
        return np.trunc(np.asarray(boxes, dtype=np.float64) * self.scale)

    def boxes_from_input(self, boxes: np.ndarray) -> np.ndarray:
        """Integer model-input boxes -> original pixels that truncate back to them: ``(b + 0.5) / scale``
        (the half pixel keeps float rounding from truncating ``b`` to ``b - 1``)."""
        return (np.asarray(boxes, dtype=np.float64) + 0.5) / self.scale


@dataclass(frozen=True)
class Stretch(InputGeometry):
    """MedSAM's reference geometry: bicubic stretch to ``S x S``, probabilities interpolated."""

    pipeline: ClassVar[str] = "medsam"

    @staticmethod
    def resized_shape_for(height: int, width: int, input_size: int) -> tuple[int, int]:
        return input_size, input_size

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        from skimage.transform import resize

        side = self.input_size
        resized = resize(image_rgb, (side, side), order=3, preserve_range=True, anti_aliasing=True)
        return resized.astype(np.uint8)

    def _to_original(self, low_res_logits: torch.Tensor) -> torch.Tensor:
        """``logit(bilinear(sigmoid(low_res), (H, W)))``: ``> 0`` is the reference's ``> 0.5``."""
        probabilities = F.interpolate(
            torch.sigmoid(low_res_logits), self.original_shape, mode="bilinear", align_corners=False
        )
        return torch.logit(probabilities, eps=_PROBABILITY_EPS)


_GEOMETRIES: dict[str, type[InputGeometry]] = {"sam": Letterbox, "litemedsam": AreaLetterbox, "medsam": Stretch}


def input_geometry(pipeline: str, original_shape: tuple[int, int], input_size: int) -> InputGeometry:
    """The geometry of an image of ``original_shape`` ``(H, W)`` under ``pipeline`` (one of
    :data:`INPUT_PIPELINES`) for a model input of ``input_size`` pixels."""
    try:
        geometry = _GEOMETRIES[pipeline]
    except KeyError:
        raise ValueError(f"unknown input pipeline {pipeline!r}; known: {', '.join(INPUT_PIPELINES)}") from None
    return geometry.for_shape(original_shape, input_size)
