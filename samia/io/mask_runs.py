"""2D masks as COCO run-length encodings (pycocotools' compressed RLE, as SAM's automatic mask
generator writes ``coco_rle``), stored as one JSON string: ``{"size": [H, W], "counts": "..."}``.

A result row keeps its scored mask this way (column ``mask_rle``), so that ``samia report`` can draw
any row's prediction without ``--save-masks`` files; a few hundred bytes for a typical object.
"""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as coco_mask


def encode_mask(mask: np.ndarray) -> str:
    """``mask`` (``(H, W)``, bool or 0/1) as a JSON string of its COCO RLE (``size``, ``counts``)."""
    if mask.ndim != 2:
        raise ValueError(f"a COCO RLE holds one 2D mask, got shape {mask.shape}")
    encoded = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return json.dumps({"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")})


def decode_mask(text: str) -> np.ndarray:
    """The ``(H, W)`` bool mask of a string written by :func:`encode_mask` (or any COCO compressed RLE
    as JSON)."""
    record = json.loads(text)
    decoded = coco_mask.decode({"size": record["size"], "counts": record["counts"].encode("ascii")})
    return np.asarray(decoded, dtype=bool)
