"""What the predictor needs of a model, whatever runs it (no torch import here).

:class:`samia.models.segmenter.PromptableSegmenter` (PyTorch) and
:class:`samia.models.exported.ExportedModel` (ONNX Runtime, OpenVINO) both satisfy
:class:`Segmenter`; the predictor, everything mode, click simulation and the volume engine only
use these members, so everything before and after the two calls (the input pipeline's resizing
and prompt scaling, mask post-processing, thresholds) is one shared implementation.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np

RANDOM_WEIGHTS = "random"
"""``weights_sha256`` of a model with random weights (no file to hash)."""

Normalization = Literal["imagenet", "minmax"]
"""How pixels are scaled before the encoder (SAM's ImageNet statistics, or MedSAM's per-image min-max)."""


class Segmenter(Protocol):
    """A SAM-family model seen through numpy arrays.

    Attributes:
        name: registry name, e.g. ``"litemedsam"``.
        weights_sha256: SHA-256 of the weights file (``"random"`` for random weights).
        input_size: side ``S`` of the square model input, pixels.
        normalization: ``"imagenet"`` or ``"minmax"``.
        input_pipeline: ``"sam"``, ``"litemedsam"`` or ``"medsam"`` (``samia.transforms.geometry``).
        backend: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
        precision: ``"fp32"``, ``"bf16"`` or ``"int8"``.
        mask_threshold: logit threshold of a mask (0).
    """

    name: str
    weights_sha256: str
    input_size: int
    normalization: Normalization
    input_pipeline: str
    backend: str
    precision: str
    mask_threshold: float

    @property
    def low_res_size(self) -> int:
        """Side ``L`` of the low-resolution logits and of ``mask_input``."""
        ...

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, E, E)``."""
        ...

    def eval(self) -> Segmenter:
        """The model in inference mode (torch: ``nn.Module.eval``; an exported model: itself)."""
        ...

    def embed(self, resized_rgb: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` image already resized by the input pipeline (uint8; float32 on the 0..255 scale for ``sam2``) (``h, w <= S``) ->
        ``(1, C, E, E)`` float32 embedding."""
        ...

    def decode_arrays(
        self,
        embedding: np.ndarray,
        point_coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        boxes: np.ndarray | None,
        mask_inputs: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``B`` prompts of one structure against one ``(1, C, E, E)`` embedding.

        Args:
            point_coords: ``(B, N, 2)`` float32 ``(x, y)`` in model-input pixels, or None.
            point_labels: ``(B, N)`` int, 1 positive, 0 negative, -1 padding; None iff no points.
            boxes: ``(B, 4)`` float32 XYXY in model-input pixels, or None.
            mask_inputs: ``(B, 1, L, L)`` float32 low-resolution logits, or None.

        Returns:
            ``(B, 4, L, L)`` float32 logits (token 0 the single-mask output, 1..3 the multimask
            candidates) and ``(B, 4)`` float32 predicted IoU.
        """
        ...


def runtime_label(model: Segmenter) -> str:
    """What runs ``model``, as commands print it: ``"onnxruntime (fp32)"``."""
    if getattr(model, "exported_encoder", None) is not None:  # SAM 2: the image encoder alone exported
        return f"{model.backend} ({model.precision}) image encoder, torch decoder and memory"
    return f"{model.backend} ({model.precision})"
