"""Parameter-efficient additions to an image encoder, and the files that carry only them.

- **LoRA** (``peft``): low-rank updates ``W + (alpha / r) B A`` of the attention's ``qkv`` and
  ``proj`` linear layers of every encoder block (TinyViT and segment-anything's ViT name them alike).
- **Bottleneck adapters** (the Medical-SAM-Adapter idea, Houlsby-style): after the attention and
  after the MLP of every encoder block, ``y -> y + W_up GELU(W_down y)`` with the up-projection
  zero-initialised, so a fresh adapter leaves the model unchanged.

An *adapter file* holds only these weights (and the mask decoder's, when it trained too: SAMed's
recipe) plus what is needed to rebuild the model: the method,
its hyper-parameters, the base model's registry name and the SHA-256 of its weights. Give it as
``--checkpoint`` (or to :func:`samia.models.build_model`) with the base model's name: the base is
built with its own weights, checked against the recorded hash, and the adapter applied on top
(LoRA merged into the base weights, so inference costs nothing extra).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from samia.errors import CheckpointError
from samia.files import atomic_write_bytes, file_sha256
from samia.models.encoder_blocks import adapt_output, encoder_blocks
from samia.models.segmenter import PromptableSegmenter

ADAPTER_FILE_KEY = "samia_adapter"
"""Top-level key that marks an adapter file (its value: the :class:`AdapterSpec` record)."""

LORA_TARGET_MODULES = r".*\.attn\.(qkv|proj)"
"""peft ``target_modules`` regex (full match on module names inside the image encoder)."""

ADAPTER_METHODS = ("lora", "adapter", "ua_adapter")


@dataclass(frozen=True)
class AdapterSpec:
    """What an adapter file adds to which base model.

    Attributes:
        method: ``"lora"`` or ``"adapter"``.
        base_model: registry name of the base model.
        base_weights_sha256: SHA-256 of the base weights the adapter was trained on.
        base_checkpoint: the base weights file given at training time; None = the model's bundled
            weights.
        lora_rank, lora_alpha, target_modules: LoRA rank, scaling numerator and target regex.
        adapter_ratio: bottleneck width / block width (``adapter``, ``ua_adapter``).
        latent_dim: size of the latent code (``ua_adapter``, :mod:`samia.models.ua_adapter`).
        latent_blocks: the last ``latent_blocks`` encoder blocks carry conditioned adapters
            (``ua_adapter``; 0 = every block).
        train_decoder: the mask decoder was trained too (SAMed-style); the file then holds its
            weights as well.
    """

    method: str
    base_model: str
    base_weights_sha256: str
    base_checkpoint: str | None = None
    lora_rank: int = 0
    lora_alpha: float = 0.0
    target_modules: str = LORA_TARGET_MODULES
    adapter_ratio: float = 0.0
    latent_dim: int = 0
    latent_blocks: int = 0
    train_decoder: bool = False

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AdapterSpec:
        return cls(**{k: record[k] for k in cls.__dataclass_fields__ if k in record})


class Bottleneck(nn.Module):
    """``y -> y + up(GELU(down(y)))`` on the last axis; the identity at initialisation.

    Args:
        dim: channels of ``y`` (last axis).
        hidden: bottleneck width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        adapted: torch.Tensor = y + self.up(nn.functional.gelu(self.down(y)))
        return adapted


def insert_adapters(encoder: nn.Module, ratio: float) -> int:
    """Give the ``attn`` and ``mlp`` of every encoder block a :class:`Bottleneck` on their output.

    The adapter becomes the child ``adapter`` of the wrapped module (state-dict keys
    ``...attn.adapter.down.weight``; the base keys do not change) and runs as its forward hook.

    Returns:
        the number of adapters inserted.

    Raises:
        ValueError: the encoder has no block with ``attn`` and ``mlp``.
    """
    blocks = encoder_blocks(encoder)
    if not blocks:
        raise ValueError(f"{type(encoder).__name__} has no transformer block (attn + mlp) to adapt")
    for block in blocks:
        for part in (block.get_submodule("attn"), block.get_submodule("mlp")):
            width = [m for m in part.modules() if isinstance(m, nn.Linear)][-1].out_features
            part.add_module("adapter", Bottleneck(width, max(1, round(width * ratio))))
            part.register_forward_hook(adapt_output)
    return 2 * len(blocks)


def add_lora(encoder: nn.Module, spec: AdapterSpec) -> Any:
    """Inject LoRA layers (``peft``) into ``encoder`` in place; returns peft's ``LoraModel`` tuner."""
    from peft import LoraConfig
    from peft.tuners.lora import LoraModel

    alpha: Any = spec.lora_alpha  # typed int by peft, which divides it by r: a float scales as well
    config = LoraConfig(
        r=spec.lora_rank, lora_alpha=alpha, target_modules=spec.target_modules, lora_dropout=0.0, bias="none"
    )
    return LoraModel(encoder, config, "default")


def attach(model: PromptableSegmenter, spec: AdapterSpec) -> Any:
    """Add ``spec``'s modules to ``model.image_encoder`` (fresh weights); the peft tuner for LoRA, else None."""
    if spec.method == "lora":
        return add_lora(model.image_encoder, spec)
    if spec.method == "adapter":
        insert_adapters(model.image_encoder, spec.adapter_ratio)
        return None
    if spec.method == "ua_adapter":
        from samia.models.ua_adapter import attach_latent_adapters

        attach_latent_adapters(model, spec.adapter_ratio, spec.latent_dim, spec.latent_blocks)
        return None
    raise ValueError(f"unknown adapter method {spec.method!r}; expected one of {ADAPTER_METHODS}")


def is_adapter_key(key: str, method: str) -> bool:
    """Whether state-dict ``key`` belongs to the added modules of ``method`` (a ``ua_adapter``'s
    latent nets included)."""
    if method == "lora":
        return ".lora_A." in key or ".lora_B." in key
    return ".adapter." in key or (method == "ua_adapter" and key.startswith("latent."))


def is_spec_key(key: str, spec: AdapterSpec) -> bool:
    """Whether state-dict ``key`` is held by an adapter file of ``spec``: the added modules, and the
    mask decoder when it trained too."""
    return is_adapter_key(key, spec.method) or (spec.train_decoder and key.startswith("mask_decoder."))


def adapter_state(model: PromptableSegmenter, spec: AdapterSpec) -> dict[str, torch.Tensor]:
    """The weights an adapter file of ``spec`` holds (detached CPU copies), keyed as in ``model.state_dict()``."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if is_spec_key(k, spec)}


def save_adapter_file(path: Path, model: PromptableSegmenter, spec: AdapterSpec, meta: dict[str, Any]) -> None:
    """Write ``{ADAPTER_FILE_KEY: spec + {"finetune": meta}, "weights": adapter weights}`` atomically.

    ``meta`` (run config, data hashes, epoch, validation Dice) must be plain Python values.
    """
    buffer = io.BytesIO()
    torch.save(
        {ADAPTER_FILE_KEY: {**spec.to_record(), "finetune": meta}, "weights": adapter_state(model, spec)}, buffer
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


@dataclass(frozen=True)
class AdapterFile:
    """A read adapter file: where it is, what it adds to which base, and the weights."""

    path: Path
    spec: AdapterSpec
    weights: dict[str, torch.Tensor]

    def build(self, name: str, factory: Callable[[Path | None], PromptableSegmenter]) -> PromptableSegmenter:
        """The base model ``name`` (built by its registry ``factory``) with these adapters applied.

        Raises:
            CheckpointError: the file was trained on another base model or other base weights
                (the message names the file and both names / hashes), or its weights do not fit.
        """
        spec = self.spec
        if spec.base_model != name:
            raise CheckpointError(
                self.path,
                f"is a {spec.method} file for base model {spec.base_model!r} "
                f"(weights sha256 {spec.base_weights_sha256}), not for {name!r}",
            )
        base = factory(None if spec.base_checkpoint is None else Path(spec.base_checkpoint))
        if base.weights_sha256 != spec.base_weights_sha256:
            raise CheckpointError(
                self.path,
                f"is a {spec.method} file for {name!r} weights sha256 "
                f"{spec.base_weights_sha256}, but the base weights have sha256 {base.weights_sha256}",
            )
        tuner = attach(base, spec)
        expected = {k: tuple(v.shape) for k, v in base.state_dict().items() if is_spec_key(k, spec)}
        found = {k: tuple(v.shape) for k, v in self.weights.items()}
        if expected != found:
            differing = sorted(set(expected.items()) ^ set(found.items()))
            raise CheckpointError(
                self.path,
                f"{spec.method} weights do not fit {name!r}: {len(differing)} keys or "
                f"shapes differ (e.g. {differing[:2]})",
            )
        base.load_state_dict(self.weights, strict=False)
        if tuner is not None:
            tuner.merge_and_unload()
        base.weights_sha256 = file_sha256(self.path)
        return base.eval()


def read_adapter_file(path: str | Path) -> AdapterFile | None:
    """The adapter file at ``path``, or None when ``path`` is anything else (a plain state dict,
    a missing or unreadable file: the regular checkpoint loader reports those).

    Tensors are memory-mapped while the marker is looked for, so probing a multi-GB SAM
    checkpoint reads only its index.
    """
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not ours to judge: load_weights gives the precise error
        return None
    if not isinstance(loaded, dict) or not isinstance(loaded.get(ADAPTER_FILE_KEY), dict):
        return None
    record, weights = loaded[ADAPTER_FILE_KEY], loaded.get("weights")
    if record.get("method") not in ADAPTER_METHODS or not isinstance(weights, dict):
        raise CheckpointError(path, f"is a damaged adapter file (method {record.get('method')!r}, weights missing?)")
    return AdapterFile(path, AdapterSpec.from_record(record), {k: v.clone() for k, v in weights.items()})
