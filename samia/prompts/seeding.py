"""Per-object random generators: the same object gets the same prompts whatever the order of work."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def object_rng(seed: int, *identity: Any) -> np.random.Generator:
    """A generator seeded by ``seed`` and an identity, independent of evaluation order."""
    digest = hashlib.sha256(json.dumps([str(part) for part in identity]).encode()).digest()
    return np.random.default_rng([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def prompt_rng(
    seed: int, case_id: str, slice_index: int | None, label: int, component: int | None, strategy: str
) -> np.random.Generator:
    """The generator of one object's prompts of one strategy.

    ``samia evaluate`` and fine-tuning validation both use it, so an object gets the same prompts in
    both. ``slice_index`` None (a 2D image) counts as -1, ``component`` None (a whole label value)
    as -1, as in the result rows.
    """
    slice_value = -1 if slice_index is None else int(slice_index)
    component_value = -1 if component is None else int(component)
    return object_rng(seed, case_id, slice_value, int(label), component_value, strategy)
