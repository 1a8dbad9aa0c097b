"""The one model interface every SAM-family backend is wrapped into.

A :class:`PromptableSegmenter` is a pure ``torch.nn.Module``: tensors in, tensors out, every
coordinate already in model-input pixels. Files, prompts in image pixels and resizing belong to the
predictor (``samia.predictor``), never here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from samia.models.interface import Normalization

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


class PromptableSegmenter(nn.Module):
    """Image encoder + prompt encoder + mask decoder of a SAM-family model and its input convention.

    Args:
        image_encoder: maps ``(B, 3, S, S)`` float32 normalised images to ``(B, C, E, E)`` embeddings.
        prompt_encoder: segment-anything ``PromptEncoder`` for an ``S x S`` input.
        mask_decoder: segment-anything ``MaskDecoder``.
        input_size: ``S``, the side of the square model input in pixels (1024 for SAM, 256 for
            LiteMedSAM).
        normalization: ``"imagenet"`` (SAM: subtract SAM's pixel mean, divide by its std, on the
            0..255 scale) or ``"minmax"`` (MedSAM, LiteMedSAM: rescale each image to 0..1 by its own
            min and max). Padding is added after normalization, with zeros, as the originals do.
        name: registry name, e.g. ``"litemedsam"``.
        weights_sha256: SHA-256 of the loaded weights file (``"random"`` for random weights).
        input_pipeline: how images and prompts reach the model and masks come back, as the model's
            reference inference script does it (``samia.transforms.geometry``): ``"sam"``,
            ``"litemedsam"`` or ``"medsam"``.
    """

    mask_threshold: float = 0.0
    backend: str = "torch"
    precision: str = "fp32"
    image_encoder: nn.Module
    prompt_encoder: Any  # segment-anything's PromptEncoder (the package ships no type hints)
    mask_decoder: Any  # segment-anything's MaskDecoder
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: nn.Module,
        mask_decoder: nn.Module,
        input_size: int,
        normalization: Normalization,
        name: str,
        weights_sha256: str = "random",
        input_pipeline: str = "sam",
    ) -> None:
        super().__init__()
        if normalization not in ("imagenet", "minmax"):
            raise ValueError(f"unknown normalization {normalization!r}")
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.input_size = int(input_size)
        self.normalization: Normalization = normalization
        self.name = name
        self.weights_sha256 = weights_sha256
        self.input_pipeline = input_pipeline
        self.register_buffer("pixel_mean", torch.tensor(SAM_PIXEL_MEAN).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(SAM_PIXEL_STD).view(-1, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def low_res_size(self) -> int:
        """Side of the square low-resolution logits and of ``mask_input`` (4x the embedding side)."""
        return int(self.prompt_encoder.mask_input_size[0])

    def normalize_and_pad(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` float32 on the 0..255 scale, ``h, w <= S`` -> ``(B, 3, S, S)`` normalised.

        ``"minmax"`` uses each image's own min and max (a constant image becomes all zeros). The
        image is zero-padded first and normalised by :meth:`normalize_padded`, the rule the exported
        encoder graph runs too.
        """
        pad_h = self.input_size - images.shape[-2]
        pad_w = self.input_size - images.shape[-1]
        if pad_h < 0 or pad_w < 0:
            raise ValueError(f"image {tuple(images.shape[-2:])} larger than model input {self.input_size}")
        padded = nn.functional.pad(images, (0, pad_w, 0, pad_h))
        valid = nn.functional.pad(torch.ones_like(images[:, :1]), (0, pad_w, 0, pad_h))
        return self.normalize_padded(padded, valid)

    def normalize_padded(self, padded: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` zero-padded float32 images on the 0..255 scale and their ``(B, 1, S, S)``
        float32 0/1 image region -> the normalised input, zero outside the region (the padding is
        added after normalization, as the originals do)."""
        if self.normalization == "imagenet":
            normalized = (padded - self.pixel_mean) / self.pixel_std
        else:
            inside = valid > 0
            low = torch.where(inside, padded, torch.inf).flatten(1).min(dim=1).values.view(-1, 1, 1, 1)
            high = torch.where(inside, padded, -torch.inf).flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
            normalized = (padded - low) / (high - low).clamp(min=1e-8)
        return normalized * valid

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, h, w)`` resized images, float32 0..255 -> ``(B, C, E, E)`` image embeddings."""
        return self.encode_normalized(self.normalize_and_pad(images))

    def encode_normalized(self, normalized: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised, padded images -> ``(B, C, E, E)`` image embeddings."""
        embeddings: torch.Tensor = self.image_encoder(normalized)
        return embeddings

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, E, E)``: the shape of one image's embedding."""
        side = self.prompt_encoder.image_embedding_size
        return (1, int(self.prompt_encoder.embed_dim), int(side[0]), int(side[1]))

    @torch.no_grad()
    def embed(self, resized_rgb: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` image resized by the input pipeline (uint8; float32 0..255 for ``sam2``) -> ``(1, C, E, E)`` float32 embedding
        (the :class:`samia.models.interface.Segmenter` interface the predictor uses)."""
        tensor = torch.as_tensor(resized_rgb, device=self.device).permute(2, 0, 1)[None].float()
        return self.encode(tensor).float().cpu().numpy()

    @torch.no_grad()
    def decode_arrays(
        self,
        embedding: np.ndarray,
        point_coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        boxes: np.ndarray | None,
        mask_inputs: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`decode_all` on numpy arrays (shapes as there; labels int) -> ``(B, 4, L, L)`` and
        ``(B, 4)`` float32 numpy arrays (the :class:`samia.models.interface.Segmenter` interface)."""

        def tensor(array: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
            return None if array is None else torch.as_tensor(array, dtype=dtype, device=self.device)

        logits, iou = self.decode_all(
            torch.as_tensor(embedding, dtype=torch.float32, device=self.device),
            tensor(point_coords, torch.float32),
            tensor(point_labels, torch.int64),
            tensor(boxes, torch.float32),
            tensor(mask_inputs, torch.float32),
        )
        return logits.float().cpu().numpy(), iou.float().cpu().numpy()

    def decode(
        self,
        image_embedding: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode ``B`` prompts against one image embedding in one call (arguments: :meth:`decode_all`).

        Args:
            multimask_output: three candidate masks per prompt if True, else one.

        Returns:
            ``(low_res_logits, iou_predictions)``: ``(B, M, L, L)`` float32 logits (threshold 0) and
            ``(B, M)`` float32 predicted IoU, with ``M`` = 3 or 1.
        """
        logits, iou = self.decode_all(image_embedding, point_coords, point_labels, boxes, mask_inputs)
        selected = slice(1, None) if multimask_output else slice(0, 1)
        return logits[:, selected], iou[:, selected]

    def decode_all(
        self,
        image_embedding: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All four output tokens of SAM's mask decoder from one decoder pass.

        Args:
            image_embedding: ``(1, C, E, E)`` embedding of one image.
            point_coords: ``(B, N, 2)`` float32 ``(x, y)`` in model-input pixels, or None.
            point_labels: ``(B, N)`` int, 1 positive, 0 negative, -1 padding; None iff no points.
            boxes: ``(B, 4)`` float32 XYXY in model-input pixels, or None.
            mask_inputs: ``(B, 1, L, L)`` float32 low-resolution logits, or None.

        Token 0 is the single-mask output (``multimask_output=False``), tokens 1..3 the multimask
        candidates, exactly as segment-anything's ``MaskDecoder.forward`` slices them. It calls
        ``MaskDecoder.predict_masks`` (no leading underscore, but not documented API):
        ``tests/test_predictor.py`` pins that its outputs equal ``MaskDecoder.forward``'s for both
        ``multimask_output`` values, so an upstream change fails the tests, not the results.

        Returns:
            ``(B, 4, L, L)`` float32 logits and ``(B, 4)`` float32 predicted IoU.
        """
        points = None if point_coords is None else (point_coords, point_labels)
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=mask_inputs)
        logits, iou = self.mask_decoder.predict_masks(
            image_embeddings=image_embedding,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        return logits, iou
