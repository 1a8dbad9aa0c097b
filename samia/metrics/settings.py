"""How surface metrics are measured: the metrics package's settings group."""

from __future__ import annotations

from dataclasses import dataclass

from samia.errors import ConfigurationError
from samia.metrics.surface import NSD_VARIANTS
from samia.settings_groups import SettingsGroup


@dataclass(frozen=True)
class SurfaceSettings(SettingsGroup):
    """The normalised surface distance's tolerance and rule (``samia.metrics.surface``).

    Attributes:
        nsd_tolerance_mm: tolerance of the normalised surface distance, mm.
        nsd_variant: ``surfel`` (the published NSD) or ``boundary_pixels``.
        nsd_zero_at_dice: NSD is reported as 0 where Dice <= this value (the CVPR 2024
            challenge's rule uses 0.2); None = NSD as measured.
    """

    nsd_tolerance_mm: float = 2.0
    nsd_variant: str = "surfel"
    nsd_zero_at_dice: float | None = None

    def __post_init__(self) -> None:
        if self.nsd_tolerance_mm <= 0:
            raise ConfigurationError("the NSD tolerance must be > 0 mm")
        if self.nsd_variant not in NSD_VARIANTS:
            raise ConfigurationError(f"unknown NSD variant {self.nsd_variant!r}; known: {', '.join(NSD_VARIANTS)}")
