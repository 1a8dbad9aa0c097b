"""Seeded prompt generation from ground-truth masks (shared by evaluation and training)."""

from samia.prompts.primitives import centroid_point, deepest_point, tight_box
from samia.prompts.strategies import STRATEGIES, PromptStrategy, get_strategy

__all__ = ["STRATEGIES", "PromptStrategy", "centroid_point", "deepest_point", "get_strategy", "tight_box"]
