"""Prompts for a whole volume: a 3D box, or key slices with a 2D prompt (or a mask) each.

Coordinates are voxel indices of the ``(Z, Y, X)`` array: ``x`` along axis 2, ``y`` along axis 1,
``z`` along axis 0, all inclusive. When a volume is sliced along another axis (``axis=1``: planes of
``(Z, X)``; ``axis=2``: planes of ``(Z, Y)``), a 3D box's 2D projection and range are taken along
that axis (:meth:`Box3D.along`); key-slice prompts are in the plane's own ``(x, y)`` pixels =
(column, row) of ``numpy.take(volume, index, axis)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from samia.errors import ConfigurationError
from samia.types import Prompt

_AXIS_OF = {"x": 2, "y": 1, "z": 0}


@dataclass(frozen=True)
class Box3D:
    """An inclusive 3D box ``[x0, y0, z0, x1, y1, z1]`` in voxels (the CVPR 2024 challenge's ``boxes`` row)."""

    x0: int
    y0: int
    z0: int
    x1: int
    y1: int
    z1: int

    @classmethod
    def from_values(cls, values: Sequence[float], shape: tuple[int, int, int], source: str) -> Box3D:
        """A box from six numbers, checked against a ``(Z, Y, X)`` volume of ``shape``.

        Raises:
            ConfigurationError: not six whole numbers, a corner before its opposite (``x1 < x0``, an
                empty z-range), or a coordinate outside the volume; the message names ``source``.
        """
        if len(values) != 6:
            raise ConfigurationError(f"{source}: a 3D box is X0 Y0 Z0 X1 Y1 Z1 (six numbers), got {list(values)}")
        numbers = [float(v) for v in values]
        if not all(np.isfinite(numbers)) or any(v != int(v) for v in numbers):
            raise ConfigurationError(f"{source}: 3D box {numbers} must be whole voxel indices")
        box = cls(*(int(v) for v in numbers))
        for name in ("x", "y", "z"):
            low, high = getattr(box, f"{name}0"), getattr(box, f"{name}1")
            size = shape[_AXIS_OF[name]]
            if high < low:
                raise ConfigurationError(
                    f"{source}: 3D box {box.to_list()} has {name}1 = {high} < {name}0 = {low} (an empty {name}-range)"
                )
            if low < 0 or high > size - 1:
                raise ConfigurationError(
                    f"{source}: 3D box {box.to_list()} leaves the volume: {name} must lie in 0..{size - 1} "
                    f"(volume (Z, Y, X) = {tuple(shape)})"
                )
        return box

    def to_list(self) -> list[int]:
        return [self.x0, self.y0, self.z0, self.x1, self.y1, self.z1]

    def along(self, axis: int) -> tuple[int, int, np.ndarray]:
        """``(low, high, box2d)``: the inclusive range along array ``axis`` and the 2D box
        ``(x0, y0, x1, y1)`` in the pixels of the planes of that axis."""
        if axis == 0:
            return self.z0, self.z1, np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float64)
        if axis == 1:
            return self.y0, self.y1, np.array([self.x0, self.z0, self.x1, self.z1], dtype=np.float64)
        if axis == 2:
            return self.x0, self.x1, np.array([self.y0, self.z0, self.y1, self.z1], dtype=np.float64)
        raise ConfigurationError(f"axis {axis} is not an axis of a 3D volume (0, 1 or 2)")

    def middle(self, axis: int) -> int:
        """The key slice of the CVPR 2024 baseline: ``int((z1 - z0) / 2 + z0)`` along ``axis``."""
        low, high, _ = self.along(axis)
        return int((high - low) / 2 + low)


def box3d_of_mask(mask: np.ndarray) -> Box3D:
    """The tight inclusive 3D box of a non-empty ``(Z, Y, X)`` bool mask."""
    if not mask.any():
        raise ValueError("the mask is empty: it has no 3D box")
    ranges = []
    for axis in (2, 1, 0):
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(mask.any(axis=others))
        ranges.append((int(occupied[0]), int(occupied[-1])))
    (x0, x1), (y0, y1), (z0, z1) = ranges
    return Box3D(x0, y0, z0, x1, y1, z1)


@dataclass(frozen=True, eq=False)
class KeySlice:
    """One annotated slice: a 2D prompt on it, or a mask that is taken as its answer.

    Attributes:
        index: the slice along the volume's slicing axis.
        prompt: box and/or points in the plane's pixels; None when ``mask`` is given.
        mask: ``(H, W)`` bool mask of the object on this slice (e.g. drawn by hand), used as the
            slice's answer without decoding; None to decode ``prompt``.
        settled: in a correction (``VolumePrompt.current``): this key's chains already ran with
            this mask and their answers are in the current mask, so they are not run again (a
            new key between keys only shortens its neighbours' chains).
    """

    index: int
    prompt: Prompt | None = None
    mask: np.ndarray | None = None
    settled: bool = False

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.mask is None):
            raise ValueError("a key slice takes either a prompt or a mask")
        if self.prompt is not None and self.prompt.is_empty:
            raise ValueError(f"the prompt of key slice {self.index} is empty")
        if self.mask is not None:
            object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))


@dataclass(frozen=True, eq=False)
class VolumePrompt:
    """How one object of a volume is prompted: a 3D box, or one or more key slices.

    Attributes:
        box3d: the CVPR 2024 rule: the box's projection on its middle slice, then propagation
            through the box's range (see :mod:`samia.volume.engine`).
        key_slices: annotated slices (several: segmented between each pair from both ends).
        bounds: inclusive ``(low, high)`` slice range propagation may not leave; None = the volume
            (a 3D box's own range always bounds it).
        propagate: False = decode the key slices only (e.g. one box on every slice).
        current: a correction: the object's ``(Z, Y, X)`` bool mask as it stands. Each chain stops
            once its answers differ from it by under 1 % of the object's area on two consecutive
            slices, and it is kept wherever no chain reached (what the correction did not change);
            where a chain stops by a stop rule, it is cleared to the end of that chain's range.
            None: segment afresh.
    """

    box3d: Box3D | None = None
    key_slices: tuple[KeySlice, ...] = field(default=())
    bounds: tuple[int, int] | None = None
    propagate: bool = True
    current: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.box3d is None) == (not self.key_slices):
            raise ValueError("a volume prompt takes either a 3D box or key slices")
        indices = [key.index for key in self.key_slices]
        if len(set(indices)) != len(indices):
            raise ValueError(f"key slices {sorted(indices)} repeat a slice")
        object.__setattr__(self, "key_slices", tuple(sorted(self.key_slices, key=lambda key: key.index)))
        if self.current is not None:
            object.__setattr__(self, "current", np.asarray(self.current, dtype=bool))
