"""Prompt strategies: how a benchmark turns one ground-truth object into prompts.

Three kinds, each registered by name (the ``--strategy`` values):

- ``static`` strategies are seeded callables ``(mask, rng) -> list[Prompt]`` (most return one
  prompt; jitter returns one variant per band and repeat, each describing itself in ``Prompt.meta``);
- ``clicks`` is interactive: each click depends on the previous prediction (``samia.prompts.clicks``);
- ``everything`` prompts the whole image with a point grid (``samia.auto``) and matches masks to
  objects afterwards.

The point strategies follow one of two rule sets, chosen by the protocol (``samia.prompts.protocols``):
samia's own (``samia.prompts.primitives``: centroid or deepest interior point, mid-run strides) or
the exact rules of Huang et al.'s released code (``samia.prompts.huang2024``). Boxes, jitter and
clicks are the same under both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from samia.errors import ConfigurationError
from samia.prompts import huang2024
from samia.prompts.primitives import clip_box, negative_points, positive_points, tight_box
from samia.prompts.protocols import get_protocol
from samia.types import Prompt

StrategyKind = Literal["static", "clicks", "everything"]


@dataclass(frozen=True)
class JitterBand:
    """A range of prompt displacement: ``low <= |offset| < high`` in ``unit``.

    ``unit`` is ``"px"`` or ``"percent"``: for boxes, percent of the box's width (x coordinates) or
    height (y coordinates); for points, percent of the box's longer side.
    """

    low: float
    high: float
    unit: Literal["px", "percent"] = "px"

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise ConfigurationError(f"jitter band {self.low}-{self.high} must satisfy 0 <= low < high")
        if self.unit not in ("px", "percent"):
            raise ConfigurationError(f"jitter unit {self.unit!r} must be 'px' or 'percent'")

    @property
    def label(self) -> str:
        return f"{self.low:g}-{self.high:g}{'px' if self.unit == 'px' else '%'}"

    @classmethod
    def parse(cls, text: str, unit: Literal["px", "percent"] = "px") -> JitterBand:
        """``"10-20"`` -> ``JitterBand(10, 20, unit)``."""
        try:
            low, high = (float(v) for v in text.split("-"))
        except ValueError as error:
            raise ConfigurationError(f"jitter band {text!r} is not 'LOW-HIGH'") from error
        return cls(low, high, unit)


DEFAULT_BANDS = (JitterBand(0, 10), JitterBand(10, 20), JitterBand(20, 30))


@dataclass(frozen=True)
class ProtocolSettings:
    """Parameters of the strategies.

    Attributes:
        jitter_bands: displacement bands of ``box_jitter`` and ``point_jitter``.
        jitter_repeats: random draws per band (variants).
        n_points: positive points of ``point5`` and ``point5_neg5``; also their negatives.
        max_clicks: clicks of the ``clicks`` strategy.
    """

    jitter_bands: tuple[JitterBand, ...] = DEFAULT_BANDS
    jitter_repeats: int = 3
    n_points: int = 5
    max_clicks: int = 10

    def __post_init__(self) -> None:
        if self.jitter_repeats < 1 or self.n_points < 1 or self.max_clicks < 1:
            raise ConfigurationError("jitter repeats, points and clicks must be >= 1")

    def to_record(self) -> dict:
        return {
            "jitter_bands": [band.label for band in self.jitter_bands],
            "jitter_repeats": self.jitter_repeats,
            "n_points": self.n_points,
            "max_clicks": self.max_clicks,
        }


@dataclass(frozen=True)
class PromptStrategy:
    """A named rule that makes prompts from a ground-truth mask.

    Attributes:
        name: the ``--strategy`` value.
        kind: ``static``, ``clicks`` or ``everything`` (see the module docstring).
        description: the exact rule, for the evaluation guide and ``samia strategies``.
        make: for static strategies, ``make(mask, rng) -> list[Prompt]`` with ``mask`` a ``(H, W)``
            bool object mask and ``rng`` a seeded ``numpy.random.Generator``.
    """

    name: str
    kind: StrategyKind
    description: str
    make: Callable[[np.ndarray, np.random.Generator], list[Prompt]] | None = field(default=None, compare=False)

    def __call__(self, mask: np.ndarray, rng: np.random.Generator) -> list[Prompt]:
        if self.make is None:
            raise TypeError(f"strategy {self.name!r} is {self.kind}, not a static prompt maker")
        return self.make(mask, rng)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.int64)


def _random_signs(rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=size)


def _box_jitter(mask: np.ndarray, rng: np.random.Generator, settings: ProtocolSettings) -> list[Prompt]:
    box = tight_box(mask)
    size = np.tile(box[2:] - box[:2] + 1, 2)  # (w, h, w, h)
    prompts = []
    for band in settings.jitter_bands:
        for _ in range(settings.jitter_repeats):
            magnitude = rng.uniform(band.low, band.high, 4)
            shift = _random_signs(rng, 4) * (magnitude if band.unit == "px" else magnitude / 100 * size)
            jittered = clip_box(box + shift, mask.shape)
            offset = float(np.abs(jittered - box).mean())
            prompts.append(Prompt(box=jittered, meta={"jitter_band": band.label, "jitter_offset_px": offset}))
    return prompts


def _point_jitter(mask: np.ndarray, rng: np.random.Generator, settings: ProtocolSettings) -> list[Prompt]:
    points, rule = positive_points(mask, 1)
    box = tight_box(mask)
    longer = float(max(box[2] - box[0], box[3] - box[1]) + 1)
    prompts = []
    for band in settings.jitter_bands:
        for _ in range(settings.jitter_repeats):
            magnitude = rng.uniform(band.low, band.high) * (1.0 if band.unit == "px" else longer / 100)
            angle = rng.uniform(0, 2 * np.pi)
            moved = points[0] + magnitude * np.array([np.cos(angle), np.sin(angle)])
            moved = np.clip(moved, 0, [mask.shape[1] - 1, mask.shape[0] - 1])
            offset = float(np.hypot(*(moved - points[0])))
            meta = {"point_rule": rule, "jitter_band": band.label, "jitter_offset_px": offset}
            prompts.append(Prompt(points=moved[None], labels=_ones(1), meta=meta))
    return prompts


def build_strategies(
    names: list[str], settings: ProtocolSettings = ProtocolSettings(), protocol: str = "samia"
) -> list[PromptStrategy]:
    """The strategies ``names`` with ``settings`` applied under ``protocol``'s rules; ConfigurationError
    for unknown names."""
    registry = strategy_registry(settings, protocol)
    unknown = [name for name in names if name not in registry]
    if unknown:
        raise ConfigurationError(f"unknown strategy {unknown[0]!r}; known strategies: {', '.join(registry)}")
    return [registry[name] for name in names]


def _samia_point_strategies(k: int) -> list[PromptStrategy]:
    def point1(mask, rng):
        points, rule = positive_points(mask, 1)
        return [Prompt(points=points, labels=_ones(1), meta={"point_rule": rule})]

    def point_k(mask, rng):
        points, rule = positive_points(mask, k)
        return [Prompt(points=points, labels=_ones(len(points)), meta={"point_rule": rule})]

    def point_k_neg_k(mask, rng):
        positives, rule = positive_points(mask, k)
        negatives = negative_points(mask, k)
        labels = np.concatenate([_ones(len(positives)), np.zeros(len(negatives), dtype=np.int64)])
        return [Prompt(points=np.concatenate([positives, negatives]), labels=labels, meta={"point_rule": rule})]

    def box_point1(mask, rng):
        points, rule = positive_points(mask, 1)
        return [Prompt(points=points, labels=_ones(1), box=tight_box(mask), meta={"point_rule": rule})]

    return [
        PromptStrategy(
            "point1",
            "static",
            "S2: one positive point at the centroid (rounded); if outside the object, "
            "the interior point farthest from the boundary (point_rule)",
            point1,
        ),
        PromptStrategy(
            f"point{k}",
            "static",
            f"S3: {k} positive points: the point1 point, then {k - 1} at a uniform "
            "stride over the object's other pixels (row-major order)",
            point_k,
        ),
        PromptStrategy(
            f"point{k}_neg{k}",
            "static",
            f"S4: the point{k} points plus {k} negative points at a uniform "
            "stride over the background inside the tight box enlarged 2x about its centre (clipped)",
            point_k_neg_k,
        ),
        PromptStrategy("box_point1", "static", "S6: the tight box plus the point1 point", box_point1),
    ]


def _huang2024_point_strategies() -> list[PromptStrategy]:
    def first(count: int, with_box: bool = False):
        def make(mask, rng):
            points, labels, meta = huang2024.first_points(mask, count)
            return [Prompt(points=points, labels=labels, box=tight_box(mask) if with_box else None, meta=meta)]

        return make

    table = "of the released code's point table (samia.prompts.huang2024)"
    return [
        PromptStrategy(
            "point1",
            "static",
            "S2 (huang2024): the truncated centroid int(m10/m00), int(m01/m00), inside the object or not",
            first(1),
        ),
        PromptStrategy(
            "point5",
            "static",
            f"S3 (huang2024): rows 0-4 {table}: the centroid, then object pixels every int(N/5) from index 0",
            first(5),
        ),
        PromptStrategy(
            "point5_neg5",
            "static",
            f"S4 (huang2024): rows 0-9 {table} with labels 1x5, 0x5 "
            "(a 6th object row gets label 0, as in the released code)",
            first(10),
        ),
        PromptStrategy(
            "box_point1", "static", "S6 (huang2024): the tight box plus the truncated centroid", first(1, with_box=True)
        ),
    ]


def strategy_registry(
    settings: ProtocolSettings = ProtocolSettings(), protocol: str = "samia"
) -> dict[str, PromptStrategy]:
    """Every strategy under ``protocol``'s rules, in the order of the papers' protocol (S1..S6, then
    samia's additions)."""
    get_protocol(protocol)
    k = settings.n_points
    if protocol == "huang2024" and k != huang2024.N_FOREGROUND:
        raise ConfigurationError(f"the huang2024 protocol uses {huang2024.N_FOREGROUND} points, not {k}")
    points = {
        s.name: s for s in (_huang2024_point_strategies() if protocol == "huang2024" else _samia_point_strategies(k))
    }

    def box(mask, rng):
        return [Prompt(box=tight_box(mask))]

    bands = ", ".join(band.label for band in settings.jitter_bands)
    entries = [
        PromptStrategy(
            "everything",
            "everything",
            "S1: automatic masks from a point grid (no prompt); each object is "
            "matched to the generated mask with the highest IoU (oracle match)",
        ),
        points["point1"],
        points[f"point{k}"],
        points[f"point{k}_neg{k}"],
        PromptStrategy("box", "static", "S5: the tight bounding box of the object (x0, y0, x1, y1), inclusive", box),
        points["box_point1"],
        PromptStrategy(
            "box_jitter",
            "static",
            f"the tight box, each coordinate shifted by +-U(low, high) per band ({bands}), "
            f"{settings.jitter_repeats} draws per band, clipped to the image",
            lambda mask, rng: _box_jitter(mask, rng, settings),
        ),
        PromptStrategy(
            "point_jitter",
            "static",
            f"the point1 point moved by U(low, high) in a uniformly random direction "
            f"per band ({bands}), {settings.jitter_repeats} draws per band, clipped to the image",
            lambda mask, rng: _point_jitter(mask, rng, settings),
        ),
        PromptStrategy(
            "clicks",
            "clicks",
            f"iterative correction, up to {settings.max_clicks} clicks: click 1 = the point1 "
            "point; each next click at the interior point (farthest from the region's boundary) of the "
            "largest error region, positive in a false negative, negative in a false positive; the "
            "previous low-res logits are fed back as mask_input",
        ),
    ]
    return {entry.name: entry for entry in entries}


STRATEGIES: dict[str, PromptStrategy] = strategy_registry()


def get_strategy(name: str, protocol: str = "samia") -> PromptStrategy:
    """The registered strategy ``name`` (default settings) under ``protocol``; ConfigurationError
    listing the names otherwise."""
    return build_strategies([name], protocol=protocol)[0]
