"""Fine-tuning SAM-family models on a small amount of data (``samia finetune``).

Typical use::

    from samia.finetuning import FinetuneConfig, TrainingSettings, finetune
    from samia.models import ModelSettings, build_model

    config = FinetuneConfig("TRAIN", "runs/ft", ModelSettings("litemedsam"), method="lora", training=TrainingSettings(epochs=10))
    outcome = finetune(config)
    model = build_model("litemedsam", outcome.best_path)  # LoRA / adapter files load the same way

Methods (:data:`METHODS`): ``decoder``, ``full``, ``lora``, ``adapter`` (see :mod:`samia.finetuning.methods`).
"""

from samia.finetuning.config import PROMPT_KINDS, FinetuneConfig, TrainingSettings
from samia.finetuning.loop import finetune
from samia.finetuning.methods import METHODS
from samia.finetuning.outcome import FinetuneOutcome, FinetuneProgress
from samia.models.adapters import AdapterFile, AdapterSpec, read_adapter_file

__all__ = [
    "METHODS",
    "PROMPT_KINDS",
    "AdapterFile",
    "AdapterSpec",
    "FinetuneConfig",
    "FinetuneOutcome",
    "FinetuneProgress",
    "TrainingSettings",
    "finetune",
    "read_adapter_file",
]
