"""How large an image samia agrees to read, checked against what a file's header declares.

Memory follows what a header claims: a 100 KB file can declare 2000 x 2000 x 600 float32 voxels.
Every reader compares the declared pixel (voxel) count with :func:`max_pixels` *before* it decodes
anything, and refuses with :class:`~samia.errors.InvalidImageError` naming the file and the count.
The limit is ``SAMIA_MAX_PIXELS`` from the environment, default 2**28 (268 million pixels: a
512 x 512 x 1024 CT volume, or a 16384 x 16384 whole-slide tile).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from samia.errors import ConfigurationError, InvalidImageError

MAX_PIXELS_ENV = "SAMIA_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2**28


def max_pixels() -> int:
    """The largest pixel (voxel) count a file may declare: ``$SAMIA_MAX_PIXELS`` or the default."""
    text = os.environ.get(MAX_PIXELS_ENV)
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{MAX_PIXELS_ENV}={text!r} is not a whole number of pixels") from None
    if value < 1:
        raise ConfigurationError(f"{MAX_PIXELS_ENV} must be >= 1, got {value}")
    return value


def check_declared_size(path: str | Path, shape: Sequence[int]) -> None:
    """Refuse a file whose header declares more than :func:`max_pixels` pixels.

    Args:
        path: the file, for the message.
        shape: the declared size per axis (channels excluded), e.g. ``(W, H)`` or ``(X, Y, Z)``.
    """
    count = 1
    for side in shape:
        count *= int(side)
    limit = max_pixels()
    if count > limit:
        declared = " x ".join(str(int(side)) for side in shape)
        raise InvalidImageError(
            path,
            f"declares {declared} = {count:,} pixels, more than samia reads ({limit:,}; "
            f"raise {MAX_PIXELS_ENV} for a larger image)",
        )
