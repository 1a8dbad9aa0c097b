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

``sam2`` (``sam2``'s ``SAM2ImagePredictor``; SAM 2.1 and MedSAM2)
    Stretch to ``S x S`` the float image on the 0..1 scale with torchvision's bilinear, antialiased
    resize (``SAM2Transforms``); the resized image stays float (returned on the 0..255 scale, not
    rounded). Points and boxes are scaled by ``(S / W, S / H)`` (float). Low-res logits: bilinear
    straight to ``(H, W)`` (``SAM2Transforms.postprocess_masks``), threshold 0.
``medsam2`` (MedSAM2's ``medsam2_infer_3D_CT.py``)
    Each uint8 slice, as RGB, stretched to ``S x S`` with PIL's default ``resize`` filter (bicubic),
    kept uint8; prompts and logits as ``sam2``.

Every geometry maps prompts into the model frame and the model's low-res logits back to the
original grid; the predictor, everything mode, click simulation and fine-tuning use them through
:func:`input_geometry` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

InputPipeline = Literal["sam", "litemedsam", "medsam", "sam2", "medsam2"]
INPUT_PIPELINES: tuple[str, ...] = ("sam", "litemedsam", "medsam", "sam2", "medsam2")

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
        """Longest side to ``input_size``, the other ``int(side * scale + 0.5)`` (all three scripts, as
        segment-anything's ``ResizeLongestSide.get_preprocess_shape``)."""
        scale = input_size * 1.0 / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    def resize_image(self, image_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> ``(h, w, 3)`` as the pipeline's reference script resizes: uint8, except
        ``sam2``'s float32 on the 0..255 scale (its reference resizes the float image)."""
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
        original: np.ndarray = boxes / np.array([scale_x, scale_y, scale_x, scale_y])
        return original

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

    def logits_to_original(self, low_res_logits: np.ndarray) -> np.ndarray:
        """Low-resolution logits ``(..., L, L)`` (e.g. ``(B, M, L, L)``) -> float32 logits on the original
        grid ``(..., H, W)``; threshold at 0 for a mask.

        Bilinear upsampling to ``S x S``, crop of the padding to ``(h, w)``, bilinear resampling to
        ``(H, W)`` (segment-anything's ``Sam.postprocess_masks``; for LiteMedSAM ``L = S`` and the
        first step is the identity). Every backend's logits come back through here; OpenCV's bilinear
        resampling (half-pixel centres, no antialiasing) is torch's ``F.interpolate(mode="bilinear",
        align_corners=False)`` to within about 1e-4 on logits of magnitude ~10.
        """
        logits = np.asarray(low_res_logits, dtype=np.float32)
        leading = logits.shape[:-2]
        planes = logits.reshape(-1, *logits.shape[-2:])
        out = np.empty((len(planes), *self.original_shape), dtype=np.float32)
        for index, plane in enumerate(planes):
            out[index] = self._to_original(plane)
        return out.reshape(*leading, *self.original_shape)

    def _to_original(self, plane: np.ndarray) -> np.ndarray:
        """One ``(L, L)`` float32 plane -> ``(H, W)`` float32."""
        if plane.shape[-1] != self.input_size:
            plane = _bilinear(plane, (self.input_size, self.input_size))
        return _bilinear(plane[: self.resized_shape[0], : self.resized_shape[1]], self.original_shape)


def _bilinear(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` float32 -> ``(H, W)`` float32, bilinear with half-pixel centres (OpenCV ``INTER_LINEAR``)."""
    import cv2

    return cv2.resize(np.ascontiguousarray(plane), (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Letterbox(InputGeometry):
    """segment-anything's geometry: PIL bilinear resize of the longest side, zero padding."""

    pipeline: ClassVar[str] = "sam"

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        """PIL's bilinear resize, as ``ResizeLongestSide.apply_image`` calls it through torchvision."""
        from PIL import Image

        height, width = self.resized_shape
        return np.array(
            Image.fromarray(np.ascontiguousarray(image_rgb)).resize((width, height), Image.Resampling.BILINEAR)
        )


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
        resized: np.ndarray = resize(image_rgb, (side, side), order=3, preserve_range=True, anti_aliasing=True)
        return resized.astype(np.uint8)

    def _to_original(self, plane: np.ndarray) -> np.ndarray:
        """``logit(bilinear(sigmoid(low_res), (H, W)))``: ``> 0`` is the reference's ``> 0.5``."""
        probabilities = _bilinear((1.0 / (1.0 + np.exp(-plane))).astype(np.float32), self.original_shape)
        clipped = np.clip(probabilities.astype(np.float64), _PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
        return np.log(clipped / (1.0 - clipped)).astype(np.float32)


@dataclass(frozen=True)
class FloatStretch(InputGeometry):
    """SAM 2's reference geometry: the float image stretched to ``S x S``, logits bilinear to ``(H, W)``."""

    pipeline: ClassVar[str] = "sam2"

    @staticmethod
    def resized_shape_for(height: int, width: int, input_size: int) -> tuple[int, int]:
        return input_size, input_size

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        """``(S, S, 3)`` float32 on the 0..255 scale (unrounded), as ``SAM2Transforms`` resizes
        ``ToTensor``'s 0..1 image: torchvision's bilinear resize with antialiasing."""
        import torch
        from torchvision.transforms.functional import resize

        tensor = torch.as_tensor(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float() / 255.0
        side = self.input_size
        resized = resize(tensor, [side, side], antialias=True)
        return np.ascontiguousarray((resized * 255.0).permute(1, 2, 0).numpy(), dtype=np.float32)

    def _to_original(self, plane: np.ndarray) -> np.ndarray:
        return _bilinear(plane, self.original_shape)


@dataclass(frozen=True)
class PilStretch(FloatStretch):
    """MedSAM2's reference geometry: the uint8 image stretched to ``S x S`` by PIL (bicubic)."""

    pipeline: ClassVar[str] = "medsam2"

    def _resize(self, image_rgb: np.ndarray) -> np.ndarray:
        """``(S, S, 3)`` uint8: ``PIL.Image.resize((S, S))`` with its default filter for RGB (bicubic),
        as ``resize_grayscale_to_rgb_and_resize`` of the reference."""
        from PIL import Image

        side = self.input_size
        return np.array(Image.fromarray(np.ascontiguousarray(image_rgb)).resize((side, side), Image.Resampling.BICUBIC))


_GEOMETRIES: dict[str, type[InputGeometry]] = {
    "sam": Letterbox,
    "litemedsam": AreaLetterbox,
    "medsam": Stretch,
    "sam2": FloatStretch,
    "medsam2": PilStretch,
}


def input_geometry(pipeline: str, original_shape: tuple[int, int], input_size: int) -> InputGeometry:
    """The geometry of an image of ``original_shape`` ``(H, W)`` under ``pipeline`` (one of
    :data:`INPUT_PIPELINES`) for a model input of ``input_size`` pixels."""
    try:
        geometry = _GEOMETRIES[pipeline]
    except KeyError:
        raise ValueError(f"unknown input pipeline {pipeline!r}; known: {', '.join(INPUT_PIPELINES)}") from None
    return geometry.for_shape(original_shape, input_size)
