"""How a run reads its cases into 2D objects: the data package's settings group."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from samia.data.layouts import LAYOUTS, resolve_instances
from samia.errors import ConfigurationError
from samia.settings_groups import SettingsGroup

DEFAULT_MIN_AREA = 50
"""Objects under this many pixels on a slice are skipped (and counted) unless a run or its protocol
says otherwise (``huang2024`` fixes 51, i.e. objects of <= 50 px dropped)."""


@dataclass(frozen=True)
class CaseSettings(SettingsGroup):
    """How cases become objects (``samia.data.build_manifest``, ``samia.data.iter_slice_items``).

    Attributes:
        layout: ``auto`` or one of :data:`samia.data.LAYOUTS`.
        modality: overrides the dataset's modality when given (it picks the default preset).
        axis: array axis along which volumes are sliced (0 = z).
        min_area: objects smaller than this many pixels on a slice are skipped and counted; None =
            the run's protocol's (:data:`DEFAULT_MIN_AREA` where there is no protocol).
        connected_components: one object per connected component instead of per label value.
        instances: the label maps number the objects of this one class (instance maps); None: as
            the dataset's ``dataset.json`` says (each value a class by default).
        preset: intensity preset name (``samia.transforms.intensity``); None = the modality's.
    """

    layout: str = "auto"
    modality: str | None = None
    axis: int = 0
    min_area: int | None = None
    connected_components: bool = False
    instances: str | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ConfigurationError(f"unknown layout {self.layout!r}; known: auto, {', '.join(LAYOUTS)}")
        if self.min_area is not None and self.min_area < 0:
            raise ConfigurationError(f"--min-area must be >= 0, got {self.min_area}")

    def resolved(self, data: str | Path) -> CaseSettings:
        """These settings as a run records them: ``instances`` checked or read from ``data``'s
        ``dataset.json``, and ``min_area`` as a number (:attr:`minimum_area`)."""
        return replace(
            self,
            instances=resolve_instances(data, self.instances, self.connected_components),
            min_area=self.minimum_area,
        )

    @property
    def minimum_area(self) -> int:
        """``min_area`` as a number: :data:`DEFAULT_MIN_AREA` when None."""
        return DEFAULT_MIN_AREA if self.min_area is None else self.min_area
