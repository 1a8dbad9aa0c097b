"""SAM-family models behind one interface and a name registry.

Exports load lazily: ``from samia.models import build_model`` imports no torch, so a model that is
already exported for ONNX Runtime or OpenVINO runs without it (``samia.models.loading``).
"""

from samia.lazy import lazy_exports

_EXPORTS = {
    "build_model": "samia.models.loading",
    "ModelSettings": "samia.models.settings",
    "litemedsam_checkpoint": "samia.models.bundled",
    "RANDOM_WEIGHTS": "samia.models.interface",
    "Segmenter": "samia.models.interface",
    "file_sha256": "samia.files",
    "ExportedModel": "samia.models.exported",
    "MODEL_REGISTRY": "samia.models.registry",
    "ModelSpec": "samia.models.registry",
    "PromptableSegmenter": "samia.models.segmenter",
    "load_weights": "samia.models.checkpoints",
    "read_state_dict": "samia.models.checkpoints",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
