"""ONNX exports of a :class:`PromptableSegmenter`, made once from its own torch modules and cached.

Two graphs per model (described in :mod:`samia.models.exported`, which runs them without torch):
``encoder.onnx`` (:class:`EncoderGraph`: the model's normalization and image encoder) and
``decoder.onnx`` (:class:`DecoderGraph`: the prompt encoder and the mask decoder, all four output
tokens, dynamic prompts and points, optional mask input). A box is its two corners as points, as
segment-anything's own ONNX export encodes it; a prompt without a box ends with one padding point,
as ``PromptEncoder`` appends it.

Files live in ``<cache>/<export_key>/``, are written atomically, and ``manifest.json`` (written
last) records their SHA-256: an entry that is missing, changed or that a backend cannot load is
exported again, never trusted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from samia.errors import ConfigurationError
from samia.files import atomic_write, file_sha256
from samia.models.exported import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_FILE,
    GRAPH_FILES,
    OPSET,
    ExportedEncoder,
    ExportedModel,
    ExportManifest,
    ExportUnusable,
    check_backend,
    default_cache_directory,
    export_key,
)
from samia.models.interface import RANDOM_WEIGHTS
from samia.models.segmenter import PromptableSegmenter


class EncoderGraph(nn.Module):
    """``image_encoder(normalize_padded(image, valid))``: the encoder graph's computation."""

    def __init__(self, model: PromptableSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.model.encode_normalized(self.model.normalize_padded(image, valid))


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
        logits, iou = self.mask_decoder.predict_masks(
            image_embeddings=image_embedding,
            image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        return logits, iou


def parameters_sha256(model: PromptableSegmenter) -> str:
    """Hex SHA-256 of the model's state dict (names and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_export_key(model: PromptableSegmenter) -> str:
    """:func:`samia.models.exported.export_key` of ``model``; random weights are keyed by their
    parameters, so two random models never share graphs."""
    random = model.weights_sha256 == RANDOM_WEIGHTS
    return export_key(model.name, model.weights_sha256, parameters_sha256(model) if random else None)


def encoder_export_key(model: PromptableSegmenter) -> str:
    """The cache key of ``model``'s encoder graph exported alone (apart from a full export's)."""
    return model_export_key(model) + "-encoder"


def export_encoder(model: PromptableSegmenter, cache: Path | None = None) -> Path:
    """Export the model's encoder graph alone and its manifest into ``cache/<key>-encoder/``.

    Returns:
        The entry's folder.
    """
    folder = (cache or default_cache_directory()) / encoder_export_key(model)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    with torch.no_grad():
        atomic_write(folder / ENCODER_FILE, lambda temporary: _export_encoder(model, temporary))
    _manifest(model, folder, (ENCODER_FILE,)).write(folder)
    return folder


def encoder_on_backend(
    model: PromptableSegmenter, backend: str, precision: str = "fp32", cache: Path | None = None
) -> ExportedEncoder:
    """``model``'s image encoder run by an exported ``backend`` (cached as :func:`on_backend` caches).

    Raises:
        ConfigurationError: see :func:`samia.models.exported.check_backend`; an export that fails.
    """
    check_backend(backend, precision)
    folder = (cache or default_cache_directory()) / encoder_export_key(model)
    try:
        return ExportedEncoder(folder, backend, precision)
    except ExportUnusable:
        pass
    try:
        return ExportedEncoder(export_encoder(model, cache), backend, precision)
    except (RuntimeError, ValueError, OSError, ExportUnusable) as error:
        raise ConfigurationError(
            f"{model.name}'s image encoder cannot be exported for {backend}: {' '.join(str(error).split())[:300]}"
        ) from None


def _export_encoder(model: PromptableSegmenter, path: Path) -> None:
    """The encoder graph of ``model`` at ``path``, traced on a half-valid blank input."""
    side = model.input_size
    image = torch.zeros(1, 3, side, side)
    valid = torch.zeros(1, 1, side, side)
    valid[..., : side // 2, :] = 1.0
    _export(EncoderGraph(model), (image, valid), path, ["image", "valid"], ["embedding"], {})


def _manifest(model: PromptableSegmenter, folder: Path, files: tuple[str, ...]) -> ExportManifest:
    """The manifest of ``model``'s graphs ``files`` in ``folder`` (hashed as they are now)."""
    return ExportManifest(
        name=model.name,
        weights_sha256=model.weights_sha256,
        input_size=model.input_size,
        normalization=model.normalization,
        input_pipeline=model.input_pipeline,
        low_res_size=model.low_res_size,
        embedding_shape=model.embedding_shape,
        mask_threshold=float(model.mask_threshold),
        files={name: file_sha256(folder / name) for name in files},
    )


def export_graphs(model: PromptableSegmenter, cache: Path | None = None) -> Path:
    """Export the model's two graphs and their manifest into ``cache/<key>/`` (again, even if there).

    Args:
        model: the torch model (moved to the CPU), with its reference input pipeline.
        cache: the export cache; :func:`samia.models.exported.default_cache_directory` when None.

    Returns:
        The entry's folder.
    """
    folder = (cache or default_cache_directory()) / model_export_key(model)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    low_res = model.low_res_size
    decoder_example = (
        torch.zeros(model.embedding_shape),
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
    with torch.no_grad():
        atomic_write(folder / ENCODER_FILE, lambda temporary: _export_encoder(model, temporary))
        atomic_write(
            folder / "decoder.onnx",
            lambda temporary: _export(
                DecoderGraph(model).eval(),
                decoder_example,
                temporary,
                list(DECODER_INPUTS),
                list(DECODER_OUTPUTS),
                dynamic,
            ),
        )
    _manifest(model, folder, GRAPH_FILES).write(folder)
    return folder


def on_backend(
    model: PromptableSegmenter,
    backend: str,
    precision: str = "fp32",
    cache: Path | None = None,
    input_pipeline: str | None = None,
) -> ExportedModel:
    """``model`` (with its reference input pipeline) run by an exported ``backend`` at ``precision``.

    The cache entry is used when it is usable (manifest, files with their recorded SHA-256, loaded
    by the backend), and exported again otherwise.

    Args:
        input_pipeline: another input pipeline to run the exported model with, or None.

    Raises:
        ConfigurationError: see :func:`samia.models.exported.check_backend`; the torch backend
            (nothing to export); an export that fails (naming the model).
    """
    check_backend(backend, precision)
    if backend == "torch":
        raise ConfigurationError("the torch backend runs the model itself; nothing to export")
    folder = (cache or default_cache_directory()) / model_export_key(model)
    try:
        return ExportedModel(folder, backend, precision, input_pipeline)
    except ExportUnusable:
        pass
    try:
        return ExportedModel(export_graphs(model, cache), backend, precision, input_pipeline)
    except (RuntimeError, ValueError, OSError, ExportUnusable) as error:
        raise ConfigurationError(
            f"{model.name} cannot be exported for {backend}: {' '.join(str(error).split())[:300]}"
        ) from None


def _export(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> None:
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
