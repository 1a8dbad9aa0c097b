"""ONNX exports of a :class:`PromptableSegmenter`, made once from its own torch modules and cached.

Two graphs per model:

``encoder``
    ``image`` ``(1, 3, S, S)`` float32, normalised and padded (``PromptableSegmenter.normalize_and_pad``)
    -> ``embedding`` ``(1, C, E, E)``.
``decoder`` (:class:`DecoderGraph`: the prompt encoder and the mask decoder in one graph)
    ``image_embedding`` ``(1, C, E, E)``, ``point_coords`` ``(B, N, 2)`` in model-input pixels,
    ``point_labels`` ``(B, N)`` float32 (1 positive, 0 negative, -1 padding, 2 / 3 a box's top-left
    / bottom-right corner), ``mask_input`` ``(B, 1, L, L)``, ``has_mask_input`` ``(B,)`` (1 or 0)
    -> ``low_res_logits`` ``(B, 4, L, L)`` and ``iou_predictions`` ``(B, 4)``: all four output tokens,
    single and multimask, from one run; ``B`` and ``N`` are dynamic. A box is its two corners as
    points, as segment-anything's own ONNX export encodes it; a prompt without a box ends with one
    padding point, as ``PromptEncoder`` appends it (:func:`decoder_inputs` lays prompts out so).

Files live under a key of everything that changes them (model name, weights SHA-256, input size,
normalization, torch version, opset, samia version), are written atomically, and are exported again
when missing or unreadable.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import samia
from samia.files import atomic_write
from samia.models.segmenter import PromptableSegmenter

OPSET = 17
DECODER_INPUTS = ("image_embedding", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions")


def default_cache_directory() -> Path:
    """``$SAMIA_CACHE/exports``, else ``~/.cache/samia/exports``."""
    root = os.environ.get("SAMIA_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "samia") / "exports"


class DecoderGraph(nn.Module):
    """``PromptEncoder`` + ``MaskDecoder.predict_masks`` with prompts as labelled points (module docstring).

    Each label adds its learned embedding to the point's positional encoding; a padding point (-1)
    has no positional encoding and gets ``not_a_point_embed``, exactly as ``PromptEncoder._embed_points``
    and ``_embed_boxes`` compute them, so the graph's outputs equal ``PromptableSegmenter.decode_all``.
    """

    def __init__(self, model: PromptableSegmenter) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder

    def forward(
        self,
        image_embedding: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.prompt_encoder
        sparse = encoder.pe_layer.forward_with_coords(point_coords + 0.5, encoder.input_image_size)
        labels = point_labels.unsqueeze(-1)
        sparse = sparse * (labels != -1).float() + encoder.not_a_point_embed.weight * (labels == -1).float()
        for value, embedding in enumerate(encoder.point_embeddings):
            sparse = sparse + embedding.weight * (labels == value).float()
        has_mask = has_mask_input.reshape(-1, 1, 1, 1)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask * encoder.mask_downscaling(mask_input) + (1 - has_mask) * no_mask
        return self.mask_decoder.predict_masks(
            image_embeddings=image_embedding,
            image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )


def decoder_inputs(
    image_embedding: np.ndarray,
    point_coords: np.ndarray | None,
    point_labels: np.ndarray | None,
    boxes: np.ndarray | None,
    mask_inputs: np.ndarray | None,
    low_res_size: int,
) -> dict[str, np.ndarray]:
    """The decoder graph's inputs for ``B`` prompts of one structure (arguments as
    ``PromptableSegmenter.decode_all``'s, as numpy arrays); points first, then a padding point when
    there is no box, then the box's corners, as ``PromptEncoder`` orders its sparse embeddings."""
    batch = next(len(a) for a in (point_coords, boxes, mask_inputs) if a is not None)
    coords = [np.zeros((batch, 0, 2), np.float32)]
    labels = [np.zeros((batch, 0), np.float32)]
    if point_coords is not None:
        coords.append(point_coords.astype(np.float32))
        labels.append(point_labels.astype(np.float32))
    if boxes is None and point_coords is not None:  # PromptEncoder pads points that come without a box
        coords.append(np.zeros((batch, 1, 2), np.float32))
        labels.append(-np.ones((batch, 1), np.float32))
    else:
        coords.append(boxes.astype(np.float32).reshape(batch, 2, 2))
        labels.append(np.tile(np.array([[2.0, 3.0]], np.float32), (batch, 1)))
    has_mask = mask_inputs is not None
    return {
        "image_embedding": image_embedding.astype(np.float32),
        "point_coords": np.concatenate(coords, axis=1),
        "point_labels": np.concatenate(labels, axis=1),
        "mask_input": mask_inputs.astype(np.float32)
        if has_mask
        else np.zeros((batch, 1, low_res_size, low_res_size), np.float32),
        "has_mask_input": np.full(batch, 1.0 if has_mask else 0.0, np.float32),
    }


@dataclass(frozen=True)
class ExportedGraphs:
    """The two ONNX files of one model."""

    encoder: Path
    decoder: Path


def export_key(model: PromptableSegmenter) -> str:
    """Hex key of the exported files of ``model`` (module docstring); the parameters themselves are
    hashed too, so fine-tuned, LoRA or adapter weights never reuse another model's graphs."""
    digest = hashlib.sha256(
        f"{model.name}|{model.weights_sha256}|{model.input_size}|{model.normalization}|torch {torch.__version__}"
        f"|opset {OPSET}|samia {samia.__version__}".encode()
    )
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def export_graphs(model: PromptableSegmenter, directory: Path | None = None, force: bool = False) -> ExportedGraphs:
    """The model's encoder and decoder graphs, exported into ``directory/<key>/`` unless already there.

    Args:
        model: the torch model (on the CPU).
        directory: the export cache; :func:`default_cache_directory` when None.
        force: export again even if the files exist (a backend found them unreadable).
    """
    folder = (directory or default_cache_directory()) / export_key(model)
    graphs = ExportedGraphs(folder / "encoder.onnx", folder / "decoder.onnx")
    folder.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    side, embedding = model.input_size, model.prompt_encoder.image_embedding_size
    low_res = model.low_res_size
    with torch.no_grad():
        if force or not graphs.encoder.is_file():
            image = torch.zeros(1, 3, side, side)
            atomic_write(
                graphs.encoder,
                lambda temporary: _export(model.image_encoder, (image,), temporary, ["image"], ["embedding"], {}),
            )
        if force or not graphs.decoder.is_file():
            example = (
                torch.zeros(1, model.prompt_encoder.embed_dim, *embedding),
                torch.zeros(2, 3, 2),
                torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]]),
                torch.zeros(2, 1, low_res, low_res),
                torch.zeros(2),
            )
            dynamic = {
                "point_coords": {0: "prompts", 1: "points"},
                "point_labels": {0: "prompts", 1: "points"},
                "mask_input": {0: "prompts"},
                "has_mask_input": {0: "prompts"},
                "low_res_logits": {0: "prompts"},
                "iou_predictions": {0: "prompts"},
            }
            atomic_write(
                graphs.decoder,
                lambda temporary: _export(
                    DecoderGraph(model).eval(), example, temporary, list(DECODER_INPUTS), list(DECODER_OUTPUTS), dynamic
                ),
            )
    return graphs


def _export(
    module: nn.Module, example: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:  # type: ignore[type-arg]
    import warnings

    with warnings.catch_warnings():  # the tracer's notes on Python control flow are for its authors
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            opset_version=OPSET,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )
