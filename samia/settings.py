"""samia's environment settings, in one place: each has a name, a default, a unit and a check.

A setting is read from the environment variable ``SAMIA_<NAME>`` each time it is asked for (so a
test or a server can change it), and a value that is not a number in range is refused with one
line naming the variable. ``docs/architecture.md`` lists them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from samia.errors import ConfigurationError


@dataclass(frozen=True)
class Setting:
    """One number samia reads from the environment.

    Attributes:
        variable: the environment variable (``SAMIA_...``).
        default: its value when the variable is unset or empty.
        least: the smallest value accepted.
        unit: what the number counts, for messages (``pixels``, ``MiB``, ``seconds``).
        help: one line: what it bounds.
    """

    variable: str
    default: float
    least: float
    unit: str
    help: str

    def value(self) -> float:
        """The variable's number, or the default.

        Raises:
            ConfigurationError: not a number, or below ``least``.
        """
        text = os.environ.get(self.variable, "").strip()
        if not text:
            return self.default
        try:
            number = float(text)
        except ValueError:
            raise ConfigurationError(f"{self.variable}={text!r} is not a number of {self.unit}") from None
        if not number >= self.least:
            raise ConfigurationError(f"{self.variable} must be >= {self.least:g} {self.unit}, got {text}")
        return number


MAX_PIXELS = Setting("SAMIA_MAX_PIXELS", 2**28, 1, "pixels", "largest pixel (voxel) count an image file may declare")
ANNOTATE_CACHE_MB = Setting(
    "SAMIA_ANNOTATE_CACHE_MB", 512, 16, "MiB", "embeddings the annotation server keeps in memory"
)
LEASE_SECONDS = Setting(
    "SAMIA_LEASE_SECONDS", 30, 2, "seconds", "how long a case stays held by a page that stopped sending heartbeats"
)
BODY_TIMEOUT_SECONDS = Setting(
    "SAMIA_BODY_TIMEOUT_SECONDS", 20, 0.1, "seconds", "how long a server waits for a request body to arrive"
)
SETTINGS = (MAX_PIXELS, ANNOTATE_CACHE_MB, LEASE_SECONDS, BODY_TIMEOUT_SECONDS)
"""Every numeric setting (docs/architecture.md lists them)."""


def cache_root() -> Path:
    """Where samia keeps what it can rebuild (exported models): ``$SAMIA_CACHE``, else
    ``~/.cache/samia``."""
    root = os.environ.get("SAMIA_CACHE", "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "samia"
