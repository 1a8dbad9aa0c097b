"""samia: Segment Anything in Medical Imaging, Assessed and Adapted.

The public Python API (everything the command line does goes through it; names load on first use,
so ``import samia`` stays cheap):

- :func:`segment`: an image or volume and its prompts to masks with geometry and probabilities
  (:class:`Segmentation`); ``samia segment`` on the command line.
- :func:`load_model`: a registry model on a backend (:func:`samia.models.build_model`);
  :class:`SamiaPredictor` encodes an image once and answers many prompts.
- :class:`VolumeSession` and :func:`segment_volume`: the volume engine (3D boxes, key slices
  propagated); :class:`VolumePrompt`; :func:`segment_volume_with_memory` and
  :class:`MemorySettings`: SAM 2's memory tracking through a volume (SAM 2 family models).
- :func:`evaluate` with :class:`EvaluationConfig`: a benchmark run (``samia evaluate``).
- :func:`finetune` with :class:`FinetuneConfig`: fine-tuning (``samia finetune``).
- :func:`report`: the report of result folders (``samia report``).
- The settings groups a run is made of, each owned by the package whose behaviour it sets and
  serialised one way (:mod:`samia.settings_groups`): :class:`ModelSettings`, :class:`CaseSettings`,
  :class:`PromptSettings`, :class:`SurfaceSettings`, :class:`EverythingSettings`,
  :class:`TrainingSettings`.
- The data types: :class:`Image2D`, :class:`Volume`, :class:`Prompt`; every error a user can
  cause is a :class:`SamiaError`.

Example::

    >>> import numpy as np
    >>> import samia
    >>> predictor = samia.SamiaPredictor(samia.load_model("tiny_sam"))  # loaded once, used for many images
    >>> image = np.zeros((48, 48), np.float32)
    >>> image[10:30, 10:30] = 1.0
    >>> result = samia.segment(image, samia.Prompt(box=np.array([8, 8, 30, 30])), model=predictor, spacing=(1, 1))
    >>> result.label_map().shape
    (48, 48)
"""

from samia.errors import SamiaError
from samia.lazy import lazy_exports
from samia.types import Image2D, Prompt, Volume
from samia.version import __version__

_EXPORTS = {
    "segment": "samia.segmentation",
    "Segmentation": "samia.segmentation",
    "load_model": "samia.models:build_model",
    "SamiaPredictor": "samia.predictor",
    "VolumeSession": "samia.volume",
    "VolumePrompt": "samia.volume",
    "segment_volume": "samia.volume",
    "segment_volume_with_memory": "samia.volume.memory",
    "MemorySettings": "samia.volume.memory",
    "evaluate": "samia.evaluation.driver",
    "EvaluationConfig": "samia.evaluation.config",
    "finetune": "samia.finetuning.loop",
    "FinetuneConfig": "samia.finetuning.config",
    "report": "samia.analysis.report:build_report",
    "ModelSettings": "samia.models.settings",
    "CaseSettings": "samia.data.settings",
    "PromptSettings": "samia.prompts.settings",
    "SurfaceSettings": "samia.metrics.settings",
    "EverythingSettings": "samia.auto",
    "TrainingSettings": "samia.finetuning.config",
}

__all__ = ["Image2D", "Prompt", "SamiaError", "Volume", "__version__", *sorted(_EXPORTS)]

__getattr__ = lazy_exports(__name__, _EXPORTS)
