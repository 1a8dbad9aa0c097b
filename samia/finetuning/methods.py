"""Fine-tuning methods: which parameters of a :class:`PromptableSegmenter` train, and how they are saved.

| method | trains | frozen | saved as |
|---|---|---|---|
| ``decoder`` | mask decoder | image encoder (embeddings cached), prompt encoder | full state dict |
| ``full`` | image encoder + mask decoder | prompt encoder | full state dict |
| ``lora`` | LoRA on the encoder's attention ``qkv``/``proj`` (+ the mask decoder with ``--train-decoder``) | everything else | adapter file |
| ``adapter`` | bottleneck adapters in the encoder blocks (+ the mask decoder with ``--train-decoder``) | everything else | adapter file |
| ``ssam`` | singular-value scale/shift of the encoder blocks' linear layers + their LayerNorms (+ the mask decoder with ``--train-decoder``) | everything else | full state dict, merged |
| ``ua_adapter`` | latent-conditioned adapters in the last encoder blocks and the mask decoder's blocks + the prior and posterior nets (+ the mask decoder) | everything else | adapter file |

Frozen BatchNorm: every method keeps the encoder's BatchNorm layers (TinyViT's convolutions) in
eval mode, so one image per step never disturbs their running statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from samia.errors import ConfigurationError
from samia.finetuning.config import FinetuneConfig
from samia.models import PromptableSegmenter
from samia.models.adapters import AdapterSpec, attach, is_adapter_key
from samia.models.encoder_blocks import encoder_blocks
from samia.models.svd_tuning import SVDLinear, attach_svd, tuned_parameters


@dataclass(frozen=True)
class Method:
    """A fine-tuning method.

    Attributes:
        name: the ``--method`` value.
        description: one line for help texts.
        caches_embeddings: the image encoder is frozen and unchanged, so each image is encoded
            once and its embedding reused in every epoch.
        adapter: the method adds modules to the encoder and saves only them (an adapter file).
        trains: ``trains(model)`` marks the parameters to train (``requires_grad``) and freezes
            the others; called after the adapter modules, if any, are attached.
    """

    name: str
    description: str
    caches_embeddings: bool
    adapter: bool
    trains: Callable[[PromptableSegmenter], None]


def _decoder(model: PromptableSegmenter) -> None:
    model.requires_grad_(False)
    model.mask_decoder.requires_grad_(True)


def _full(model: PromptableSegmenter) -> None:
    model.requires_grad_(False)
    model.image_encoder.requires_grad_(True)
    model.mask_decoder.requires_grad_(True)


def _ssam(model: PromptableSegmenter) -> None:
    model.requires_grad_(False)
    for parameter in tuned_parameters(model.image_encoder):
        parameter.requires_grad_(True)


def _added(method: str) -> Callable[[PromptableSegmenter], None]:
    def trains(model: PromptableSegmenter) -> None:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(is_adapter_key(name, method))

    return trains


METHODS: dict[str, Method] = {
    "decoder": Method("decoder", "mask decoder on cached embeddings (Huang et al.)", True, False, _decoder),
    "full": Method("full", "image encoder + mask decoder (MedSAM)", False, False, _full),
    "lora": Method(
        "lora", "LoRA on the image encoder's attention (peft); only adapters saved", False, True, _added("lora")
    ),
    "adapter": Method(
        "adapter", "bottleneck adapters in the encoder blocks (Medical-SAM-Adapter)", False, True, _added("adapter")
    ),
    "ssam": Method("ssam", "singular values of the encoder's linear layers and its norms (S-SAM)", False, False, _ssam),
    "ua_adapter": Method(
        "ua_adapter",
        "adapters conditioned on a conditional VAE's latent code, many masks per prompt (Uncertainty-aware Adapter)",
        False,
        True,
        _added("ua_adapter"),
    ),
}


def adapter_spec(model: PromptableSegmenter, config: FinetuneConfig) -> AdapterSpec:
    """The :class:`AdapterSpec` of an adapter method run on base ``model`` (its name and weights hash)."""
    return AdapterSpec(
        method=config.method,
        base_model=model.name,
        base_weights_sha256=model.weights_sha256,
        base_checkpoint=None if config.model.checkpoint is None else str(Path(config.model.checkpoint).resolve()),
        lora_rank=config.training.lora_rank if config.method == "lora" else 0,
        lora_alpha=config.training.lora_alpha if config.method == "lora" else 0.0,
        adapter_ratio=config.training.adapter_ratio if config.method in ("adapter", "ua_adapter") else 0.0,
        latent_dim=config.training.latent_dim if config.method == "ua_adapter" else 0,
        latent_blocks=config.training.latent_blocks if config.method == "ua_adapter" else 0,
        train_decoder=bool(config.train_decoder),  # FinetuneConfig fills it from the method
    )


def prepare(model: PromptableSegmenter, config: FinetuneConfig) -> AdapterSpec | None:
    """Attach the method's modules to ``model`` and mark what trains.

    Returns:
        the adapter spec for adapter methods (``lora``, ``adapter``), None otherwise.

    Raises:
        ConfigurationError: ``lora``, ``adapter`` or ``ssam`` on a model whose encoder has no
            transformer blocks (:func:`check_applies`).
    """
    check_applies(model, config.method)
    method = METHODS[config.method]
    spec = adapter_spec(model, config) if method.adapter else None
    if spec is not None:
        with torch.random.fork_rng(devices=[]):  # added weights drawn from the run's seed: one seed, one run
            torch.manual_seed(config.seed)
            attach(model, spec)
    if config.method == "ssam":
        try:
            attach_svd(model.image_encoder)
        except ValueError as error:
            raise ConfigurationError(f"--method ssam does not apply to {model.name}: {error}") from None
    method.trains(model)
    if config.train_decoder:
        model.mask_decoder.requires_grad_(True)
    return spec


def check_applies(model: PromptableSegmenter, method: str) -> None:
    """Refuse, before any training, a method that needs encoder blocks on a model without them.

    Raises:
        ConfigurationError: ``lora``, ``adapter``, ``ssam`` or ``ua_adapter`` on a model whose image
            encoder has no transformer block (``attn`` + ``mlp``); ``ua_adapter`` on an encoder it
            cannot cut before its conditioned blocks (SAM 2's Hiera).
    """
    if method in ("lora", "adapter", "ssam", "ua_adapter") and not encoder_blocks(model.image_encoder):
        raise ConfigurationError(
            f"--method {method} does not apply to {model.name}: its image encoder "
            f"({type(model.image_encoder).__name__}) has no transformer block (attn + mlp) to adapt"
        )
    if method == "ua_adapter":
        from samia.models.ua_adapter import split_encoder

        try:
            split_encoder(model, 0)
        except ValueError as error:
            raise ConfigurationError(f"--method ua_adapter does not apply to {model.name}: {error}") from None


def parameter_counts(model: PromptableSegmenter) -> dict[str, int | float]:
    """What a prepared run trains: ``trainable_parameters`` (elements of the parameters with
    ``requires_grad``), ``total_parameters`` (every parameter of the model as trained: added adapter
    weights included, and each S-SAM layer's frozen weight, which its SVD buffers stand for) and
    ``trainable_share`` (their ratio, 0..1)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen_svd = sum(m.u.shape[0] * m.vh.shape[1] for m in model.modules() if isinstance(m, SVDLinear))
    total = sum(p.numel() for p in model.parameters()) + frozen_svd
    return {"trainable_parameters": trainable, "total_parameters": total, "trainable_share": trainable / total}


LATENT_LR_FACTOR = 10.0
"""The ua_adapter's prior and posterior nets, trained from scratch, learn at this multiple of ``lr``
(the adapters and the decoder adapt pretrained weights at ``lr``)."""


def make_optimizer(model: PromptableSegmenter, config: FinetuneConfig) -> torch.optim.AdamW:
    """AdamW (``config.training.lr``, ``config.training.weight_decay``) over the parameters that train, with the fused
    kernel (one pass over all tensors: several times faster than the per-tensor loop on CPU); a
    ua_adapter's latent nets at :data:`LATENT_LR_FACTOR` times ``lr``."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    latent = [p for name, p in named if name.startswith("latent.")]
    groups: list[dict[str, Any]] = [{"params": [p for name, p in named if not name.startswith("latent.")]}]
    if latent:
        groups.append({"params": latent, "lr": config.training.lr * LATENT_LR_FACTOR})
    return torch.optim.AdamW(groups, lr=config.training.lr, weight_decay=config.training.weight_decay, fused=True)


def set_training_mode(model: PromptableSegmenter, training: bool) -> None:
    """``model.train(training)``, with every BatchNorm layer left in eval mode (frozen statistics)."""
    model.train(training)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
