"""The SAM 2 family (SAM 2.1, MedSAM2) in samia's model interface, on Meta's ``sam2`` package.

The architecture and its weights are ``sam2``'s own (its Hydra configs, built as its video predictor
is); samia only wraps the image path of ``SAM2ImagePredictor`` into
:class:`~samia.models.segmenter.PromptableSegmenter`'s two calls:

- ``encode``: the Hiera trunk and FPN neck, the mask decoder's ``conv_s0``/``conv_s1`` projections of
  the two high-resolution levels. The three maps are *packed* into one ``(1, C + 4 C1 + 16 C0, E, E)``
  embedding (``pixel_unshuffle`` of the ``2E`` and ``4E`` maps; lossless), so samia's embedding
  caches, their byte budgets and every backend hold one array per image: 1024 channels at ``E = 64``
  for SAM 2.1, four times SAM 1's bytes. The same embedding serves the image path and memory
  propagation (:meth:`Sam2Segmenter.backbone_out`, :mod:`samia.volume.memory`).
- ``decode_all``: unpacked again with ``no_mem_embed`` added to the lowest level (an image without
  memory, as ``SAM2ImagePredictor.set_image``), the prompts through ``sam_prompt_encoder`` as
  ``SAM2ImagePredictor._predict`` gives them (a box as two corner points with labels 2 and 3 *before*
  the clicks; no padding point when there is a box), and ``sam_mask_decoder.predict_masks`` with the
  high-resolution features. Token 0 is what the predictor returns for ``multimask_output=False``: the
  single-mask token, or the most stable multimask candidate where ``dynamic_multimask_via_stability``
  swaps it in (``build_sam2``'s default, in eval mode only, as ``MaskDecoder.forward``); tokens
  1..3 the multimask candidates.

Without ``sam2``'s compiled ``_C`` extension (the CPU install builds none), ``SAM2ImagePredictor``
skips its optional hole filling; samia's predictor never fills holes, so the two agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from samia.errors import ConfigurationError
from samia.models.segmenter import PromptableSegmenter

if TYPE_CHECKING:
    from samia.models.exported import ExportedEncoder

SAM2_CONFIGS = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
"""samia's registry names of SAM 2.1 -> ``sam2``'s Hydra config of the architecture (MedSAM2: the
tiny one with :data:`MEDSAM2_OVERRIDES`)."""

MEDSAM2_OVERRIDES: dict[str, Any] = {
    "model.image_size": 512,
    "model.memory_attention.layer.self_attention.feat_sizes": [32, 32],
    "model.memory_attention.layer.cross_attention.feat_sizes": [32, 32],
}
"""MedSAM2's released ``sam2.1_hiera_t512.yaml``, transcribed: it is ``sam2``'s
``sam2.1_hiera_t.yaml`` with these three values changed (the 512-pixel input and the memory
attention's RoPE grid of its 32 x 32 embedding), nothing else."""

INFERENCE_OVERRIDES: dict[str, Any] = {
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "model.binarize_mask_from_pts_for_mem_enc": True,
}
"""The post-processing options ``sam2``'s ``build_sam2_video_predictor`` sets (its
``apply_postprocessing``; the image builder sets the first three); ``fill_hole_area`` is 8 where
the ``_C`` extension is built, else 0 (:mod:`samia.models.sam2_tracker`)."""

SAM2_INSTALL = (
    "SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'samia[sam2]' (the CPU build uses the installed torch)"
)
"""How to install the ``samia[sam2]`` extra without pulling another torch build."""


def build_sam2_base(config: str, overrides: dict[str, Any] | None = None) -> nn.Module:
    """``sam2``'s model for ``config`` (a config path inside the ``sam2`` package) with random
    weights, in eval mode on the CPU, as ``build_sam2_video_predictor`` builds it: a
    :class:`~samia.models.sam2_tracker.Sam2Tracker` (a ``SAM2VideoPredictor``, itself a ``SAM2Base``
    whose image path ``SAM2ImagePredictor`` uses unchanged) with :data:`INFERENCE_OVERRIDES`, then
    ``overrides`` (dotted keys -> values)."""
    try:
        import sam2
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        from samia.models.sam2_tracker import hole_filling_available
    except ImportError:
        raise ConfigurationError(f"SAM 2 models need Meta's sam2 package: {SAM2_INSTALL}") from None
    settings = OmegaConf.load(Path(sam2.__file__).parent / config)
    values = {
        "model._target_": "samia.models.sam2_tracker.Sam2Tracker",
        **INFERENCE_OVERRIDES,
        "model.fill_hole_area": 8 if hole_filling_available() else 0,
        **(overrides or {}),
    }
    for key, value in values.items():
        OmegaConf.update(settings, key, value, force_add=True)
    OmegaConf.resolve(settings)
    model: nn.Module = instantiate(settings.model, _recursive_=True)
    return model.eval()


class Sam2Segmenter(PromptableSegmenter):
    """A ``sam2`` ``SAM2Base`` seen as a promptable 2D segmenter (module docstring).

    Args:
        base: the ``SAM2Base`` (its image encoder, prompt encoder and mask decoder become this
            module's; ``no_mem_embed`` a parameter of its own).
        name: registry name.
        weights_sha256: SHA-256 of the loaded checkpoint (``"random"`` for random weights).
    """

    def __init__(self, base: Any, name: str, weights_sha256: str = "random", input_pipeline: str = "sam2") -> None:
        super().__init__(
            base.image_encoder,
            base.sam_prompt_encoder,
            base.sam_mask_decoder,
            input_size=int(base.image_size),
            normalization="imagenet",
            name=name,
            weights_sha256=weights_sha256,
            input_pipeline=input_pipeline,
        )
        if not base.use_high_res_features_in_sam:
            raise ValueError(f"{name}: samia packs SAM 2's high-resolution features; this config has none")
        self.no_mem_embed = base.no_mem_embed
        self.add_no_mem_embed = bool(base.directly_add_no_mem_embed)
        self.feature_channels = (
            int(self.mask_decoder.conv_s0.out_channels),
            int(self.mask_decoder.conv_s1.out_channels),
        )
        # the whole SAM 2 model, for memory propagation: not a registered submodule (its image,
        # prompt and mask modules are this module's own, so a fine-tuned decoder tracks too)
        object.__setattr__(self, "tracker", base)
        self.exported_encoder: ExportedEncoder | None = None

    def run_encoder_on(self, encoder: ExportedEncoder) -> None:
        """Compute embeddings with ``encoder`` (this model's encoder graph on ONNX Runtime or
        OpenVINO); the decoder and the memory modules stay on torch."""
        self.exported_encoder = encoder
        self.backend, self.precision = encoder.backend, encoder.precision

    def embed(self, resized_rgb: np.ndarray) -> np.ndarray:
        """As :meth:`PromptableSegmenter.embed`, by the exported encoder where one is set."""
        if self.exported_encoder is not None:
            return self.exported_encoder.embed(resized_rgb)
        return super().embed(resized_rgb)

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """``(1, C + 4 C1 + 16 C0, E, E)``: the packed image embedding and high-resolution maps."""
        side = self.prompt_encoder.image_embedding_size
        c0, c1 = self.feature_channels
        channels = int(self.prompt_encoder.embed_dim) + 4 * c1 + 16 * c0
        return (1, channels, int(side[0]), int(side[1]))

    def encode_normalized(self, normalized: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` normalised images -> ``(B, C + 4 C1 + 16 C0, E, E)`` packed features
        (the image encoder's, before ``no_mem_embed``: the image path adds it, memory tracking not)."""
        backbone = self.image_encoder(normalized)
        fpn = list(backbone["backbone_fpn"])
        s0 = self.mask_decoder.conv_s0(fpn[0])
        s1 = self.mask_decoder.conv_s1(fpn[1])
        return torch.cat([fpn[-1], nn.functional.pixel_unshuffle(s1, 2), nn.functional.pixel_unshuffle(s0, 4)], dim=1)

    def _split(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A packed ``(B, ., E, E)`` embedding -> its maps ``(B, C, E, E)``, ``(B, C1, 2E, 2E)``,
        ``(B, C0, 4E, 4E)``."""
        channels = int(self.prompt_encoder.embed_dim)
        c0, c1 = self.feature_channels
        s1 = nn.functional.pixel_shuffle(packed[:, channels : channels + 4 * c1], 2)
        s0 = nn.functional.pixel_shuffle(packed[:, channels + 4 * c1 :], 4)
        return packed[:, :channels], s1, s0

    def unpack(self, packed: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A packed ``(B, ., E, E)`` embedding -> the image embedding ``(B, C, E, E)`` of an image
        without memory (``no_mem_embed`` added, as ``SAM2ImagePredictor.set_image``) and the
        high-resolution maps ``[(B, C0, 4E, 4E), (B, C1, 2E, 2E)]``."""
        embed, s1, s0 = self._split(packed)
        if self.add_no_mem_embed:  # SAM2Base keeps it (1, 1, C) in (HW, B, C) layout
            embed = embed + self.no_mem_embed.view(1, -1, 1, 1)
        return embed, [s0, s1]

    def backbone_out(self, packed: torch.Tensor) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        """A packed ``(1, ., E, E)`` embedding -> what ``SAM2Base.forward_image`` returns for that
        image (the memory tracker's frame features): ``backbone_fpn`` ``[s0, s1, embed]``, their
        ``vision_pos_enc`` (the neck's sine encodings, a function of the map shapes) and
        ``vision_features``."""
        embed, s1, s0 = self._split(packed)
        maps = [s0, s1, embed]
        neck: Any = self.image_encoder.neck
        encode = neck.position_encoding  # sam2's PositionEmbeddingSine
        positions = [encode(level).to(level.dtype) for level in maps]
        return {"vision_features": embed, "vision_pos_enc": positions, "backbone_fpn": maps}

    def decode_all(
        self,
        image_embedding: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All four output tokens for ``B`` prompts on one packed ``(1, ., E, E)`` embedding
        (arguments and returns as :meth:`PromptableSegmenter.decode_all`; token 0 as the module
        docstring says)."""
        embed, high_res = self.unpack(image_embedding)
        points = None
        if point_coords is not None and point_labels is not None:
            points = (point_coords, point_labels.to(torch.int64))
        if boxes is not None:
            corners = boxes.reshape(-1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], dtype=torch.int64, device=boxes.device).repeat(len(boxes), 1)
            if points is not None:
                corners = torch.cat([corners, points[0]], dim=1)
                corner_labels = torch.cat([corner_labels, points[1]], dim=1)
            points = (corners, corner_labels)
        sparse, dense = self.prompt_encoder(points=points, boxes=None, masks=mask_inputs)
        count = sparse.shape[0]
        logits, iou, _, _ = self.mask_decoder.predict_masks(
            image_embeddings=embed,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            repeat_image=count > 1,
            high_res_features=high_res,
        )
        if self.mask_decoder.dynamic_multimask_via_stability and not self.training:  # as MaskDecoder.forward
            single, single_iou = self.mask_decoder._dynamic_multimask_via_stability(logits, iou)
            logits = torch.cat([single, logits[:, 1:]], dim=1)
            iou = torch.cat([single_iou, iou[:, 1:]], dim=1)
        return logits, iou
