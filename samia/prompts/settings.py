"""Which prompt rules a run follows and how its strategies vary: the prompts package's settings group."""

from __future__ import annotations

from dataclasses import dataclass, field

from samia.prompts.protocols import Protocol, get_protocol
from samia.prompts.strategies import DEFAULT_BANDS, JitterBand, ProtocolSettings
from samia.settings_groups import SettingsGroup

DEFAULT_JITTER_BANDS = tuple(f"{band.low:g}-{band.high:g}" for band in DEFAULT_BANDS)
"""The strategies' default displacement bands (:data:`DEFAULT_BANDS`, pixels) as a record writes them."""


@dataclass(frozen=True)
class PromptSettings(SettingsGroup):
    """The prompt protocol and the strategies' parameters.

    Attributes:
        protocol: ``samia`` or ``huang2024`` (``samia.prompts.protocols``): the prompt rules, and
            the ``min_area`` and ``preset`` that ``huang2024`` fixes.
        jitter_bands: ``"LOW-HIGH"`` displacement bands of ``box_jitter``/``point_jitter``.
        jitter_unit: ``px`` or ``percent`` (of the box size; see :class:`JitterBand`).
        jitter_repeats: random draws per band.
        max_clicks: clicks of the ``clicks`` strategy.
    """

    protocol: str = "samia"
    jitter_bands: list[str] = field(default_factory=lambda: list(DEFAULT_JITTER_BANDS))
    jitter_unit: str = "px"
    jitter_repeats: int = 3
    max_clicks: int = 10

    def __post_init__(self) -> None:
        get_protocol(self.protocol)
        self.strategy_parameters()

    @property
    def rules(self) -> Protocol:
        """The named protocol (its ``min_area``, ``preset`` and oracle smoothing)."""
        return get_protocol(self.protocol)

    def strategy_parameters(self) -> ProtocolSettings:
        """The strategies' parameters (validated: ConfigurationError on a bad band or count)."""
        bands = tuple(JitterBand.parse(text, self.jitter_unit) for text in self.jitter_bands)  # type: ignore[arg-type]  # JitterBand checks the unit
        return ProtocolSettings(bands, self.jitter_repeats, 5, self.max_clicks)
