"""SAM-family models behind one interface (:class:`PromptableSegmenter`) and a name registry."""

from samia.models.checkpoints import file_sha256, load_weights, read_state_dict
from samia.models.registry import MODEL_REGISTRY, RANDOM_WEIGHTS, ModelSpec, build_model, litemedsam_checkpoint
from samia.models.segmenter import PromptableSegmenter

__all__ = [
    "MODEL_REGISTRY",
    "RANDOM_WEIGHTS",
    "ModelSpec",
    "PromptableSegmenter",
    "build_model",
    "file_sha256",
    "litemedsam_checkpoint",
    "load_weights",
    "read_state_dict",
]
