"""The transformer blocks of an image encoder, and the hook through which an adapter added to a
block's ``attn`` or ``mlp`` transforms its output (:mod:`samia.models.adapters`,
:mod:`samia.models.ua_adapter`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def encoder_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The transformer blocks of an image encoder: modules with an ``attn`` and an ``mlp`` child, in
    forward order (TinyViT's stages, ViT's blocks)."""
    return [
        m
        for m in encoder.modules()
        if isinstance(getattr(m, "attn", None), nn.Module) and isinstance(getattr(m, "mlp", None), nn.Module)
    ]


def adapt_output(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: ``module``'s output passed through its child ``adapter``."""
    adapted: torch.Tensor = module.get_submodule("adapter")(output)
    return adapted
