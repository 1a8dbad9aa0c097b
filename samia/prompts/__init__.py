"""Seeded prompt generation from ground-truth masks (shared by evaluation and training)."""

from samia.prompts.primitives import (
    centroid_point,
    clip_box,
    deepest_point,
    enlarged_box,
    negative_points,
    positive_points,
    stride_sample,
    tight_box,
)
from samia.prompts.settings import PromptSettings
from samia.prompts.strategies import (
    DEFAULT_BANDS,
    STRATEGIES,
    JitterBand,
    PromptStrategy,
    ProtocolSettings,
    build_strategies,
    get_strategy,
    strategy_registry,
)

__all__ = [
    "PromptSettings",
    "DEFAULT_BANDS",
    "STRATEGIES",
    "JitterBand",
    "PromptStrategy",
    "ProtocolSettings",
    "build_strategies",
    "centroid_point",
    "clip_box",
    "deepest_point",
    "enlarged_box",
    "get_strategy",
    "negative_points",
    "positive_points",
    "strategy_registry",
    "stride_sample",
    "tight_box",
]
