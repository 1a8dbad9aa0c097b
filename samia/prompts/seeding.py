"""Per-object random generators: the same object gets the same prompts whatever the order of work."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def object_rng(seed: int, *identity: Any) -> np.random.Generator:
    """A generator seeded by ``seed`` and the object's identity, independent of evaluation order.

    ``samia evaluate`` and fine-tuning validation both pass ``(case_id, slice, label, component,
    strategy)`` (slice -1 for 2D images, component -1 for a whole label value), so an object's
    prompts are the same in both.
    """
    digest = hashlib.sha256(json.dumps([str(part) for part in identity]).encode()).digest()
    return np.random.default_rng([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])
