"""Named evaluation protocols: which rules make the prompts, which objects count, how a mask is chosen.

``samia`` (the default)
    samia's own rules (``samia.prompts.primitives``): the first point is the rounded centroid, or
    the deepest interior point when the centroid falls outside the object (rings, crescents,
    several components); further points at mid-run strides; objects of at least 50 pixels; the
    modality's intensity preset; the oracle keeps the candidate of highest Dice.
``huang2024``
    Huang et al. (MedIA 2024) exactly as their released code does it: the point table of
    ``samia.prompts.huang2024``; objects of 50 pixels or fewer dropped (``<= 50``); the
    ``huang2024`` intensity preset of ``pre_grey_rgb2D.py`` (``samia.transforms.intensity``); the
    oracle keeps the multimask candidate of highest Dice with smoothing 0.1
    (``(2 |A & B| + 0.1) / (|A| + |B| + 0.1)``, ``test_only_box.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from samia.data.settings import DEFAULT_MIN_AREA
from samia.errors import ConfigurationError


@dataclass(frozen=True)
class Protocol:
    """What a named protocol fixes.

    Attributes:
        name: the ``--protocol`` value.
        min_area: objects with fewer pixels are skipped (and counted).
        preset: intensity preset name; None = the modality's default.
        oracle_smoothing: added to numerator and denominator of the Dice the ``oracle`` rule ranks
            candidates by (the reported Dice is never smoothed).
        description: one line for ``samia strategies`` and the evaluation guide.
    """

    name: str
    min_area: int
    preset: str | None
    oracle_smoothing: float
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "samia": Protocol(
        "samia", DEFAULT_MIN_AREA, None, 0.0, "samia's rules: centroid or deepest interior point, mid-run strides"
    ),
    "huang2024": Protocol(
        "huang2024",
        51,
        "huang2024",
        0.1,
        "Huang et al. 2024's released code: truncated centroid, strides from index 0, objects > 50 px",
    ),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ConfigurationError listing the names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigurationError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}") from None
