"""Which model runs, where and how: the models package's settings group."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from samia.errors import ConfigurationError
from samia.models.catalogue import DEFAULT_MODEL
from samia.models.exported import AUTO_BACKEND, check_backend, resolve_backend
from samia.settings_groups import SettingsGroup
from samia.transforms.geometry import INPUT_PIPELINES

if TYPE_CHECKING:
    from samia.models.interface import Segmenter


@dataclass(frozen=True)
class ModelSettings(SettingsGroup):
    """A registry model with its weights, device, backend and input pipeline.

    Attributes:
        name: registry name (``samia models`` lists them); its flat option name is ``model``.
        checkpoint: weights file; None = the model's bundled weights.
        device: torch device.
        backend: ``torch``, ``onnxruntime`` or ``openvino`` (``samia.models.exported``), or ``auto``:
            the fastest installed (:meth:`resolved` says which; a resumed run keeps its recorded one).
        precision: ``fp32``, or ``bf16`` where the backend and the CPU run it.
        input_pipeline: ``sam``, ``litemedsam`` or ``medsam`` (``samia.transforms.geometry``);
            None = the model's reference pipeline.
    """

    FLAT_NAMES: ClassVar = {"name": "model"}

    name: str = DEFAULT_MODEL
    checkpoint: str | None = None
    device: str = "cpu"
    backend: str = AUTO_BACKEND
    precision: str = "fp32"
    input_pipeline: str | None = None

    def __post_init__(self) -> None:
        if self.input_pipeline is not None and self.input_pipeline not in INPUT_PIPELINES:
            raise ConfigurationError(
                f"unknown input pipeline {self.input_pipeline!r}; known: {', '.join(INPUT_PIPELINES)}"
            )
        check_backend(self.backend, self.precision)

    def resolved(self) -> ModelSettings:
        """These settings with ``auto`` replaced by the backend it runs here."""
        return replace(self, backend=resolve_backend(self.backend, self.device, self.precision, self.name))

    def on_torch_if_auto(self) -> ModelSettings:
        """These settings with ``auto`` meaning torch: what training (and a study, whose every point
        must be measured alike) runs on, since exported graphs do not train."""
        return replace(self, backend="torch") if self.backend == AUTO_BACKEND else self

    def load(self) -> Segmenter:
        """The model these settings name, built (see :func:`samia.models.build_model`)."""
        from samia.models.loading import build_model

        return build_model(self.name, self.checkpoint, self.device, self.input_pipeline, self.backend, self.precision)
