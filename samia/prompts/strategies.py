"""Prompt strategies: how a benchmark turns one ground-truth object into prompts.

A strategy is a named, seeded callable ``(mask, rng) -> list[Prompt]``; most return one prompt,
randomised ones (jitter) may return several variants, each describing itself in ``Prompt.meta``.
Strategies are registered by name in :data:`STRATEGIES` (the ``--strategy`` values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from samia.errors import ConfigurationError
from samia.prompts.primitives import centroid_point, tight_box
from samia.types import Prompt


@dataclass(frozen=True)
class PromptStrategy:
    """A named rule that makes prompts from a ground-truth mask.

    Attributes:
        name: the ``--strategy`` value.
        make: ``make(mask, rng) -> list[Prompt]`` with ``mask`` a ``(H, W)`` bool object mask and
            ``rng`` a seeded ``numpy.random.Generator`` (the only source of randomness).
        description: the exact rule, for README and ``samia strategies``.
    """

    name: str
    make: Callable[[np.ndarray, np.random.Generator], list[Prompt]]
    description: str

    def __call__(self, mask: np.ndarray, rng: np.random.Generator) -> list[Prompt]:
        return self.make(mask, rng)


def _box(mask: np.ndarray, rng: np.random.Generator) -> list[Prompt]:
    return [Prompt(box=tight_box(mask))]


def _point1(mask: np.ndarray, rng: np.random.Generator) -> list[Prompt]:
    point, rule = centroid_point(mask)
    return [Prompt(points=point[None], labels=np.ones(1, dtype=np.int64), meta={"point_rule": rule})]


STRATEGIES: dict[str, PromptStrategy] = {
    "box": PromptStrategy("box", _box, "the tight bounding box of the object (x0, y0, x1, y1), inclusive"),
    "point1": PromptStrategy(
        "point1",
        _point1,
        "one positive point at the object's centroid; if the centroid is outside the object, the "
        "interior point farthest from the boundary (recorded as point_rule)",
    ),
}


def get_strategy(name: str) -> PromptStrategy:
    """The registered strategy ``name``; ConfigurationError listing the known names otherwise."""
    if name not in STRATEGIES:
        raise ConfigurationError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
