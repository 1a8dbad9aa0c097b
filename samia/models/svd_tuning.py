"""S-SAM's singular-value tuning of an image encoder (Paranjape et al., MICCAI 2024).

Each adapted linear layer keeps its weight's thin SVD ``W = U diag(s) V^T`` frozen (computed once,
when the layer is wrapped) and learns a scale ``a`` (init 1) and a shift ``b`` (init 0) of every
singular value: ``W' = U diag(ReLU(a * s + b)) V^T``. At initialisation ``W' = W`` (singular values
are >= 0), so a fresh model is the base model. Adapted: the ``qkv``/``proj`` layers of every
encoder block's attention and the linear layers of its MLP; the blocks' LayerNorms train too.
:func:`merged_state_dict` gives the model's state dict with every wrapped layer as the plain
``weight``/``bias`` of ``W'``, so the trained model is saved and loaded as an ordinary checkpoint of
the base architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from samia.models.encoder_blocks import encoder_blocks


class SVDLinear(nn.Module):
    """A frozen ``nn.Linear`` re-parametrised by its singular values.

    Args:
        linear: the layer to wrap; its weight ``(out, in)`` is decomposed in float64 and kept as
            float32 buffers ``u (out, r)``, ``s (r,)``, ``vh (r, in)`` with ``r = min(out, in)``.

    Attributes:
        scale: trainable ``(r,)``, init 1.
        shift: trainable ``(r,)``, init 0.
    """

    u: torch.Tensor
    s: torch.Tensor
    vh: torch.Tensor
    bias: nn.Parameter | None

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
        self.register_buffer("u", u.to(weight.dtype))
        self.register_buffer("s", s.to(weight.dtype))
        self.register_buffer("vh", vh.to(weight.dtype))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.scale = nn.Parameter(torch.ones_like(self.s))
        self.shift = nn.Parameter(torch.zeros_like(self.s))

    def weight(self) -> torch.Tensor:
        """``U diag(ReLU(scale * s + shift)) V^T``, ``(out, in)``."""
        return (self.u * torch.relu(self.scale * self.s + self.shift)) @ self.vh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight(), self.bias)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the current weight and the bias."""
        out_features, in_features = int(self.u.shape[0]), int(self.vh.shape[1])
        linear = nn.Linear(in_features, out_features, bias=self.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.weight())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear.to(self.u.device)


def _adapted_linears(encoder: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(parent, child name)`` of every linear layer inside the blocks' ``attn`` and ``mlp``."""
    found = []
    for block in encoder_blocks(encoder):
        for part in (block.get_submodule("attn"), block.get_submodule("mlp")):
            for parent in part.modules():
                found += [(parent, name) for name, child in parent.named_children() if isinstance(child, nn.Linear)]
    return found


def attach_svd(encoder: nn.Module) -> int:
    """Wrap the encoder blocks' attention and MLP linear layers in :class:`SVDLinear` (in place).

    Returns:
        the number of wrapped layers.

    Raises:
        ValueError: the encoder has no transformer block (attn + mlp) with linear layers.
    """
    targets = _adapted_linears(encoder)
    if not targets:
        raise ValueError(f"{type(encoder).__name__} has no transformer block linear layers for S-SAM")
    for parent, name in targets:
        setattr(parent, name, SVDLinear(getattr(parent, name)))
    return len(targets)


def tuned_parameters(encoder: nn.Module) -> list[nn.Parameter]:
    """What S-SAM trains in an encoder wrapped by :func:`attach_svd`: the ``scale`` and ``shift`` of
    every :class:`SVDLinear` and the weight and bias of every LayerNorm of the transformer blocks."""
    found: list[nn.Parameter] = []
    for block in encoder_blocks(encoder):
        for module in block.modules():
            if isinstance(module, SVDLinear):
                found += [module.scale, module.shift]
            elif isinstance(module, nn.LayerNorm):
                found += list(module.parameters())
    return found


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` (detached, on the CPU) with each :class:`SVDLinear` written as the
    ``weight`` and ``bias`` of the ``nn.Linear`` it stands for; the model is not changed."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for prefix, module in model.named_modules():
        if isinstance(module, SVDLinear):
            for name in ("u", "s", "vh", "scale", "shift", "bias"):
                state.pop(f"{prefix}.{name}", None)
            merged = module.merged()
            state[f"{prefix}.weight"] = merged.weight.detach().cpu()
            if merged.bias is not None:
                state[f"{prefix}.bias"] = merged.bias.detach().cpu()
    return state
