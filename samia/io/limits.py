"""How large an image samia agrees to read, checked against what a file's header declares.

Memory follows what a header claims: a 100 KB file can declare 2000 x 2000 x 600 float32 voxels.
Every reader compares the declared pixel (voxel) count with :func:`max_pixels` *before* it decodes
anything, and refuses with :class:`~samia.errors.InvalidImageError` naming the file and the count.
The limit is ``SAMIA_MAX_PIXELS`` from the environment, default 2**28 (268 million pixels: a
512 x 512 x 1024 CT volume, or a 16384 x 16384 whole-slide tile).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from samia.errors import InvalidImageError
from samia.settings import MAX_PIXELS

MAX_PIXELS_ENV = MAX_PIXELS.variable


def max_pixels() -> int:
    """The largest pixel (voxel) count a file may declare: ``$SAMIA_MAX_PIXELS`` or the default."""
    return int(MAX_PIXELS.value())


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
