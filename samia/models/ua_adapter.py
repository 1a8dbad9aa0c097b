"""The Uncertainty-aware Adapter (Jiang et al., arXiv 2403.10931, 2024): bottleneck adapters in the
image encoder conditioned on a latent code drawn from a conditional VAE, so one image and one prompt
give many plausible masks.

- **Latent nets** (the Probabilistic U-Net's axis-aligned Gaussians, Kohl et al. 2018): a *prior*
  ``p(z | x, b)`` sees the image ``x`` and the prompt's box ``b`` drawn as a channel; a *posterior*
  ``q(z | x, b, y)`` also sees one rater's mask ``y``. Each is a small convolutional net on a
  square window around the box (:func:`latent_windows`) brought to :data:`LATENT_GRID` cells,
  ending in a mean and a log standard deviation of ``latent_dim`` values.
- **Conditioned adapters**: after the attention and the MLP of the conditioned encoder blocks, and
  after the token MLP of each of the mask decoder's two-way blocks (as the Medical SAM Adapter that
  UA-SAM builds on adapts both), ``y -> y + W_up GELU(W_down y + W_z z)`` (:class:`LatentBottleneck`);
  ``W_up`` starts at zero, so a fresh adapter leaves the model unchanged whatever ``z``. The
  decoder's adapters let the code choose between the masks the decoder already tells apart (SAM's
  ambiguity tokens do this for a point), which the encoder's alone learn too slowly on small data.
- **Training** (:func:`kl_divergence`): the encoder runs with ``z ~ q`` for a rater's mask, the
  loss is the mask loss against that mask plus ``beta KL(q || p)`` (the ELBO with a weighted KL).
- **Inference** (:func:`latent_samples`): ``N`` codes from the prior, one encoder pass each
  (the code changes the image embedding), the prompt decoded against each under the same code.

The latent nets live under ``model.latent`` (state-dict keys ``latent.prior.*``,
``latent.posterior.*``); an adapter file of method ``ua_adapter`` carries them with the adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from samia.errors import ConfigurationError
from samia.models.encoder_blocks import adapt_output, encoder_blocks
from samia.models.segmenter import PromptableSegmenter

LATENT_GRID = 64
"""Side, in cells, of the window the latent nets see."""

LATENT_CONTEXT = 1.5
"""The latent nets see a square around the prompt's box, this many times the box's longer side:
the object fills the window whatever its size in the image, so a rater's choice at its border
(an included lobe, a shifted outline) is many cells, not one."""


class LatentGaussian(nn.Module):
    """``(B, channels, G, G)`` -> the mean and log standard deviation ``(B, latent_dim)`` of a
    diagonal Gaussian: three stride-2 convolution stages, global average pooling, a linear head.
    With a mask (the posterior's last channel), the head also sees the features pooled under the
    mask (their mean times the mask, over the whole window): two raters' masks of one object differ
    there by the features of what one includes and the other does not, where the global pooling of
    a convolution over one more input channel starts almost blind to them.

    Args:
        channels: input channels (3 image + 1 box; + 1 mask for the posterior).
        latent_dim: size of the code.
        width: channels of the first stage (doubled at each of the next two).
        masked: the last input channel is a mask to pool under.
    """

    def __init__(self, channels: int, latent_dim: int, width: int = 32, masked: bool = False) -> None:
        super().__init__()
        self.masked = masked
        layers: list[nn.Module] = []
        for index in range(3):
            out = width * 2**index
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1),
                nn.GELU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GELU(),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * channels if masked else channels, 2 * latent_dim)
        nn.init.normal_(self.head.weight, std=0.01)  # starts near N(0, I): no code favoured before training
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(inputs)
        pooled = features.mean(dim=(-2, -1))
        if self.masked:
            mask = nn.functional.adaptive_avg_pool2d(inputs[:, -1:], features.shape[-2:])
            pooled = torch.cat([pooled, (features * mask).mean(dim=(-2, -1))], dim=1)
        mean, log_sigma = self.head(pooled).chunk(2, dim=-1)
        return mean, log_sigma.clamp(-6.0, 3.0)


class LatentNets(nn.Module):
    """The prior and posterior nets, and the slot through which the encoder's adapters read the code.

    Args:
        latent_dim: size of the code.
        blocks: the last ``blocks`` encoder blocks are conditioned (0 = every block).

    Attributes:
        z: the ``(B, latent_dim)`` codes of the encoder pass under way (set by
            :func:`encode_with_latent`); None outside one.
    """

    def __init__(self, latent_dim: int, blocks: int, width: int = 32) -> None:
        super().__init__()
        self.latent_dim, self.blocks = int(latent_dim), int(blocks)
        self.prior = LatentGaussian(4, latent_dim, width)
        self.posterior = LatentGaussian(5, latent_dim, width, masked=True)
        self.z: torch.Tensor | None = None


class LatentBottleneck(nn.Module):
    """``y -> y + up(GELU(down(y) + condition(z)))`` on the last axis of ``y`` ``(B k, ..., dim)``,
    ``z`` ``(B, latent_dim)`` read from the shared :class:`LatentNets` slot (``k`` > 1 where the
    block attends within windows: its batch holds each image's ``k`` windows, image-major).

    Raises (in forward):
        ConfigurationError: no code is set: the model was asked for one answer (a predictor's
            embedding) instead of samples (:func:`latent_samples`).
    """

    _nets: LatentNets

    def __init__(self, dim: int, hidden: int, nets: LatentNets) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.condition = nn.Linear(nets.latent_dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        object.__setattr__(self, "_nets", nets)  # a reference, not a child: its weights are saved once

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        z = self._nets.z
        if z is None:
            raise ConfigurationError(
                "a ua_adapter model answers with samples of its latent code, not with one embedding: "
                "score it with samia evaluate --sampler latent on multi-rater data"
            )
        shift = self.condition(z).repeat_interleave(y.shape[0] // z.shape[0], dim=0)  # windows: batch-major
        shift = shift.view(y.shape[0], *([1] * (y.ndim - 2)), -1)
        adapted: torch.Tensor = y + self.up(nn.functional.gelu(self.down(y) + shift))
        return adapted


def decoder_blocks(model: PromptableSegmenter) -> list[nn.Module]:
    """The two-way attention blocks of ``model``'s mask decoder (segment-anything's ``TwoWayTransformer``)."""
    transformer = getattr(model.mask_decoder, "transformer", None)
    layers = getattr(transformer, "layers", None)
    return [block for block in layers if hasattr(block, "mlp")] if isinstance(layers, nn.ModuleList) else []


def attach_latent_adapters(model: PromptableSegmenter, ratio: float, latent_dim: int, blocks: int = 0) -> int:
    """Give ``model`` its latent nets (``model.latent``), the ``attn`` and ``mlp`` of its last
    ``blocks`` encoder blocks (0 = every block) and the token ``mlp`` of each mask-decoder block a
    :class:`LatentBottleneck` (child ``adapter``, run as a forward hook).

    Returns:
        the number of adapters inserted.

    Raises:
        ValueError: the encoder has no transformer block (``attn`` + ``mlp``), or fewer than ``blocks``.
    """
    every = encoder_blocks(model.image_encoder)
    if not every or blocks > len(every):
        raise ValueError(
            f"{type(model.image_encoder).__name__} has {len(every)} transformer blocks (attn + mlp), "
            f"cannot condition {blocks or 'every one'}"
        )
    nets = LatentNets(latent_dim, blocks).to(model.device)
    model.add_module("latent", nets)
    conditioned = every[-blocks:] if blocks else every
    parts = [block.get_submodule(name) for block in conditioned for name in ("attn", "mlp")]
    parts += [block.get_submodule("mlp") for block in decoder_blocks(model)]
    for part in parts:
        width = [m for m in part.modules() if isinstance(m, nn.Linear)][-1].out_features
        part.add_module("adapter", LatentBottleneck(width, max(1, round(width * ratio)), nets).to(model.device))
        part.register_forward_hook(adapt_output)
    return len(parts)


@dataclass(frozen=True)
class EncoderSplit:
    """An image encoder cut before its first conditioned block: ``suffix(prefix(x))`` is the
    encoder's output, and ``prefix`` (unchanged by any latent code) can be computed once per image.

    Attributes:
        prefix: ``(B, 3, S, S)`` normalised input -> the features entering the first conditioned block.
        suffix: those features -> ``(B, C, E, E)`` embeddings.
    """

    prefix: Callable[[torch.Tensor], torch.Tensor]
    suffix: Callable[[torch.Tensor], torch.Tensor]


Step = tuple[Callable[[torch.Tensor], torch.Tensor], bool]
"""One step of an encoder's forward pass: the function, and whether it is a transformer block."""


def _steps(encoder: nn.Module) -> list[Step]:
    """The encoder's forward as steps, for TinyViT (LiteMedSAM) and segment-anything's ViT (SAM, MedSAM)."""
    neck = encoder.get_submodule("neck") if hasattr(encoder, "neck") else None
    patch_embed = encoder.get_submodule("patch_embed") if hasattr(encoder, "patch_embed") else None
    if neck is None or patch_embed is None:
        raise ValueError(f"no known way to split {type(encoder).__name__} (TinyViT and SAM's ViT are known)")
    if hasattr(encoder, "layers"):  # TinyViT: a convolution stage, then stages of blocks

        def finish(x: torch.Tensor) -> torch.Tensor:
            side = int(round(x.shape[1] ** 0.5))
            out: torch.Tensor = neck(x.view(x.shape[0], side, side, x.shape[2]).permute(0, 3, 1, 2))
            return out

        layers = list(encoder.get_submodule("layers").children())
        steps: list[Step] = [(patch_embed, False), (layers[0], False)]
        for layer in layers[1:]:
            steps += [(block, True) for block in layer.get_submodule("blocks").children()]
            downsample = getattr(layer, "downsample", None)
            if isinstance(downsample, nn.Module):
                steps.append((downsample, False))
        return [*steps, (finish, False)]
    if hasattr(encoder, "blocks"):  # segment-anything's ImageEncoderViT
        position = getattr(encoder, "pos_embed", None)

        def embed(x: torch.Tensor) -> torch.Tensor:
            patches: torch.Tensor = patch_embed(x)
            return patches if position is None else patches + position

        def finish_vit(x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = neck(x.permute(0, 3, 1, 2))
            return out

        blocks: list[Step] = [(block, True) for block in encoder.get_submodule("blocks").children()]
        return [(embed, False), *blocks, (finish_vit, False)]
    raise ValueError(f"no known way to split {type(encoder).__name__} (TinyViT and SAM's ViT are known)")


def split_encoder(model: PromptableSegmenter, blocks: int) -> EncoderSplit:
    """Cut ``model``'s image encoder before its last ``blocks`` transformer blocks (0: before the
    first block, so that the prefix is only the patch embedding).

    Raises:
        ValueError: an encoder of another kind (SAM 2's Hiera), or fewer blocks than ``blocks``.
    """
    steps = _steps(model.image_encoder)
    block_positions = [i for i, (_, is_block) in enumerate(steps) if is_block]
    if blocks > len(block_positions):
        raise ValueError(f"the encoder has {len(block_positions)} blocks, cannot condition {blocks}")
    cut = block_positions[-blocks] if blocks else block_positions[0]

    def run(part: list[Step]) -> Callable[[torch.Tensor], torch.Tensor]:
        def forward(x: torch.Tensor) -> torch.Tensor:
            for function, _ in part:
                x = function(x)
            return x

        return forward

    return EncoderSplit(run(steps[:cut]), run(steps[cut:]))


def latent_nets(model: PromptableSegmenter) -> LatentNets | None:
    """``model``'s latent nets, or None for a model without a ua_adapter."""
    nets = getattr(model, "latent", None)
    return nets if isinstance(nets, LatentNets) else None


def prefix_features(model: PromptableSegmenter, pixels: torch.Tensor) -> torch.Tensor:
    """``(1, 3, h, w)`` resized image (0..255) -> the features entering the first conditioned block
    (the same for every code: compute them once per image)."""
    nets = _nets(model)
    return split_encoder(model, nets.blocks).prefix(model.normalize_and_pad(pixels))


@contextmanager
def latent_code(model: PromptableSegmenter, z: torch.Tensor) -> Iterator[LatentNets]:
    """Within the block, ``model``'s conditioned adapters read the ``(B, latent_dim)`` codes ``z``."""
    nets = _nets(model)
    nets.z = z
    try:
        yield nets
    finally:
        nets.z = None


def encode_with_latent(model: PromptableSegmenter, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """:func:`prefix_features` of one image and ``(B, latent_dim)`` codes -> ``(B, C, E, E)``
    embeddings, one per code (the conditioned blocks run once over the features repeated ``B`` times)."""
    with latent_code(model, z) as nets:
        return split_encoder(model, nets.blocks).suffix(features.expand(z.shape[0], *features.shape[1:]))


def decode_with_latent(
    model: PromptableSegmenter, embedding: torch.Tensor, z: torch.Tensor, boxes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, C, E, E)`` embedding, ``(1, latent_dim)`` code and ``(B, 4)`` boxes -> every output
    token's ``(B, 4, L, L)`` logits and ``(B, 4)`` predicted IoU (:meth:`PromptableSegmenter.decode_all`),
    the decoder's adapters conditioned on ``z``."""
    with latent_code(model, z):
        return model.decode_all(embedding, boxes=boxes)


def _nets(model: PromptableSegmenter) -> LatentNets:
    nets = latent_nets(model)
    if nets is None:
        raise ConfigurationError(
            f"{model.name} carries no ua_adapter (train one with samia finetune --method ua_adapter)"
        )
    return nets


def latent_windows(boxes: torch.Tensor) -> torch.Tensor:
    """``(B, 4)`` XYXY boxes in model-input pixels -> ``(B, 4)`` the squares the latent nets see:
    centred on each box, :data:`LATENT_CONTEXT` times its longer side (pixel edges, not centres)."""
    centre = (boxes[:, :2] + boxes[:, 2:] + 1) / 2
    half = (boxes[:, 2:] - boxes[:, :2] + 1).max(dim=1).values.clamp(min=1) * LATENT_CONTEXT / 2
    return torch.cat([centre - half[:, None], centre + half[:, None]], dim=1)


def _crop(grid: torch.Tensor, windows: torch.Tensor, scale: float) -> torch.Tensor:
    """``(1 or B, C, H, W)`` -> ``(B, C, G, G)``: each window (model-input pixels, ``scale`` grid
    pixels per model-input pixel) averaged onto ``G = LATENT_GRID`` cells; outside the grid is 0."""
    from torchvision.ops import roi_align

    index = torch.arange(len(windows), device=grid.device) if len(grid) > 1 else torch.zeros(len(windows))
    rois = torch.cat([index.to(grid)[:, None], windows.to(grid)], dim=1)
    cropped: torch.Tensor = roi_align(grid, rois, LATENT_GRID, spatial_scale=scale, sampling_ratio=-1, aligned=True)
    return cropped


def latent_inputs(model: PromptableSegmenter, pixels: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The prior's input: ``(1, 3, h, w)`` image (0..255) and ``(B, 4)`` boxes in model-input pixels
    -> ``(B, 4, G, G)``: each box's window (:func:`latent_windows`) of the padded image scaled to
    [0, 1], averaged onto ``G = LATENT_GRID`` cells, and the box drawn as a 0/1 channel on them."""
    side = model.input_size
    padded = nn.functional.pad(pixels, (0, side - pixels.shape[-1], 0, side - pixels.shape[-2])) / 255.0
    windows = latent_windows(boxes)
    image = _crop(padded, windows, 1.0)
    cell = (windows[:, 2] - windows[:, 0]).view(-1, 1) / LATENT_GRID
    centres = (torch.arange(LATENT_GRID, device=pixels.device, dtype=torch.float32) + 0.5).view(1, -1)
    x = windows[:, :1] + centres * cell  # (B, G) model-input x of each cell's centre
    y = windows[:, 1:2] + centres * cell
    inside_x = (x >= boxes[:, :1]) & (x <= boxes[:, 2:3] + 1)
    inside_y = (y >= boxes[:, 1:2]) & (y <= boxes[:, 3:4] + 1)
    box_channel = (inside_y[:, :, None] & inside_x[:, None, :]).float()[:, None]
    return torch.cat([image, box_channel], dim=1)


def posterior_inputs(
    model: PromptableSegmenter, prior_inputs: torch.Tensor, targets: torch.Tensor, boxes: torch.Tensor
) -> torch.Tensor:
    """The posterior's input: the prior's ``(B, 4, G, G)`` and the ``(B, 1, L, L)`` soft rater masks
    (model-input frame, low resolution) averaged onto the same windows of ``(B, 4)`` ``boxes`` ->
    ``(B, 5, G, G)``."""
    mask = _crop(targets, latent_windows(boxes), targets.shape[-1] / model.input_size)
    return torch.cat([prior_inputs, mask], dim=1)


def kl_divergence(
    posterior: tuple[torch.Tensor, torch.Tensor], prior: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """``KL(q || p)`` of diagonal Gaussians given as ``(mean, log sigma)`` ``(B, D)``: ``(B,)``, summed over ``D``."""
    (mean_q, log_q), (mean_p, log_p) = posterior, prior
    ratio = torch.exp(2 * (log_q - log_p))
    kl = log_p - log_q + 0.5 * (ratio + (mean_q - mean_p) ** 2 * torch.exp(-2 * log_p) - 1)
    return kl.sum(dim=-1)


def draw(mean: torch.Tensor, log_sigma: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A reparameterised draw ``mean + sigma * eps`` (differentiable in both)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(log_sigma) * noise


@torch.no_grad()
def latent_samples(
    model: PromptableSegmenter, resized_rgb: np.ndarray, box: np.ndarray, count: int, seed: int
) -> torch.Tensor:
    """``count`` low-resolution single-mask logits for one box: ``(count, 1, L, L)`` float32.

    Args:
        resized_rgb: ``(h, w, 3)`` image resized by the model's input pipeline.
        box: ``(4,)`` XYXY in model-input pixels.
        count: ``N``; ``count = 0`` is not allowed. The first code is the prior's mean (the
            model's most likely answer), the others are drawn from the prior.
        seed: seed of the draws.
    """
    nets = _nets(model)
    pixels = torch.as_tensor(resized_rgb, device=model.device).permute(2, 0, 1)[None].float()
    boxes = torch.as_tensor(np.asarray(box, dtype=np.float32), device=model.device)[None]
    mean, log_sigma = nets.prior(latent_inputs(model, pixels, boxes))
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    codes = [mean] + [draw(mean, log_sigma, generator) for _ in range(count - 1)]
    features = prefix_features(model, pixels)
    logits = []
    for z in codes:  # one code at a time: the memory of one pass of the conditioned blocks
        embedding = encode_with_latent(model, features, z)
        every, _ = decode_with_latent(model, embedding, z, boxes)
        logits.append(every[:, :1])  # the single-mask output
    return torch.cat(logits)
