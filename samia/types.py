"""The data types that travel through samia: images with their geometry, and prompts.

Conventions (the contracts every layer relies on):

- 2D images are ``(H, W)`` (gray) or ``(H, W, 3)`` (RGB) numpy arrays; spacing is ``(y, x)`` in mm.
- Volumes are ``(Z, Y, X)`` arrays; spacing is ``(z, y, x)`` in mm, i.e. in array-axis order.
  ``origin`` and ``direction`` are kept in ITK's world convention (LPS, ``(x, y, z)`` order) so that
  a mask written back lands exactly on its source image.
- Points are ``(x, y)`` pixel coordinates as in SAM; boxes are ``(x0, y0, x1, y1)`` pixels, inclusive.
- Masks are ``bool``; label maps are integer arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samia.errors import InvalidImageError

MODALITIES = (
    "CT",
    "MR",
    "US",
    "XR",
    "PET",
    "fundus",
    "endoscopy",
    "dermoscopy",
    "OCT",
    "microscopy",
    "other",
)
"""Modality names samia knows; they select the default intensity preset (see ``samia.transforms``)."""

IDENTITY_DIRECTION_3D: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

SPACING_SOURCES = (
    "header",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SequenceOfUltrasoundRegions",
    "user",
    "none",
    "fallback",
)
"""Where an image's spacing came from: a volume file's header (NIfTI, NRRD, MHA, DICOM series); the
DICOM tag named (*ImagerPixelSpacing* measures at the detector, not in the patient; an ultrasound
image's *SequenceOfUltrasoundRegions*); ``"none"``: the format stores no spacing (PNG, JPEG, TIFF,
BMP), distances are in pixels; ``"fallback"``: the file should give one but its value is missing,
zero or invalid, distances are in pixels and a warning is issued (:class:`samia.errors.InputWarning`)."""

_UNIT_OF_SOURCE = {"none": "px", "fallback": "px", "ImagerPixelSpacing": "mm at the detector"}


def float_pair(values: Iterable[float]) -> tuple[float, float]:
    """``values`` (exactly two numbers, e.g. a ``(y, x)`` spacing) as a tuple of floats.

    Raises:
        ValueError: not exactly two values.
    """
    first, second = (float(v) for v in values)
    return first, second


def float_triple(values: Iterable[float]) -> tuple[float, float, float]:
    """``values`` (exactly three numbers, e.g. a ``(z, y, x)`` spacing) as a tuple of floats.

    Raises:
        ValueError: not exactly three values.
    """
    first, second, third = (float(v) for v in values)
    return first, second, third


def distance_unit(spacing_sources: Iterable[str]) -> str:
    """The unit of distances (HD95, ASSD, NSD tolerance) measured on images with these spacing
    sources: ``"mm"``, ``"px"`` (no physical spacing), ``"mm at the detector"`` (projection
    radiographs' *ImagerPixelSpacing*), or ``"mixed units"`` when the images disagree."""
    units = {_UNIT_OF_SOURCE.get(str(source), "mm") for source in spacing_sources}
    if len(units) > 1:
        return "mixed units"
    return units.pop() if units else "mm"


@dataclass(frozen=True)
class Placement:
    """Where a 2D image lies in patient space (a single DICOM slice, a one-slice NIfTI).

    Attributes:
        origin: world position of pixel ``(0, 0)`` in mm, ITK/LPS ``(x, y, z)`` (DICOM
            *ImagePositionPatient*).
        direction: 3x3 direction cosines, row-major, ITK convention: column ``j`` is the direction
            of image axis ``j`` (x = along a row, y = down the columns, then the slice normal), as
            DICOM *ImageOrientationPatient* gives the first two.
        thickness: extent of the slice along its normal in mm (*SliceThickness*, else 1), used as
            the third spacing when the image is written as a one-slice volume.
    """

    origin: tuple[float, float, float]
    direction: tuple[float, ...] = IDENTITY_DIRECTION_3D
    thickness: float = 1.0


@dataclass(frozen=True, eq=False)
class Image2D:
    """One 2D image with its pixel spacing.

    Attributes:
        array: ``(H, W)`` gray or ``(H, W, 3)`` RGB, any numeric dtype, raw intensities
            (e.g. Hounsfield units for a CT slice).
        spacing: ``(y, x)`` pixel size in mm; ``(1.0, 1.0)`` when the file does not say.
        modality: one of :data:`MODALITIES`.
        path: the file it came from, for error messages and result rows.
        spacing_source: one of :data:`SPACING_SOURCES`.
        placement: where the image lies in patient space, when the file says (DICOM, NIfTI), else None.
        window: ``(center, width)`` of the file's own display window (DICOM *WindowCenter* /
            *WindowWidth*, first values, in the units of ``array``), else None.
    """

    array: np.ndarray
    spacing: tuple[float, float] = (1.0, 1.0)
    modality: str = "other"
    path: str | None = None
    spacing_source: str = "none"
    placement: Placement | None = None
    window: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the image grid (channels excluded)."""
        return (int(self.array.shape[0]), int(self.array.shape[1]))

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 3

    def __repr__(self) -> str:
        return (
            f"Image2D(shape={self.array.shape}, dtype={self.array.dtype}, spacing={self.spacing}, "
            f"modality={self.modality!r}, path={self.path!r})"
        )


@dataclass(frozen=True, eq=False)
class Volume:
    """One 3D scalar volume with its full geometry.

    Attributes:
        array: ``(Z, Y, X)`` raw intensities (after DICOM rescale slope/intercept).
        spacing: ``(z, y, x)`` voxel size in mm.
        origin: world position of voxel ``(0, 0, 0)`` in mm, ITK/LPS ``(x, y, z)`` order.
        direction: 3x3 direction cosines, row-major, ITK convention (as ``SimpleITK.GetDirection``).
        modality: one of :data:`MODALITIES`.
        path: the file or DICOM folder it came from.
        window: ``(center, width)`` of the file's own display window (DICOM), else None.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = IDENTITY_DIRECTION_3D
    modality: str = "other"
    path: str | None = None
    window: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    def slice(self, index: int, axis: int = 0) -> Image2D:
        """The 2D image at ``index`` along array ``axis`` (0 = z/axial for a standard volume).

        The spacing of the slice is the spacing of the two remaining axes, in array order.

        Raises:
            InvalidImageError: ``axis`` is not 0-2 or ``index`` is outside it (naming the file).
        """
        check_slice_index(self.path or "<volume>", self.array.shape[:3], index, axis)
        plane = np.take(self.array, index, axis=axis)
        spacing = float_pair(s for a, s in enumerate(self.spacing) if a != axis)
        return Image2D(
            plane,
            spacing=spacing,
            modality=self.modality,
            path=self.path,
            spacing_source="header",
            window=self.window,
        )

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.array.shape}, dtype={self.array.dtype}, spacing={self.spacing}, "
            f"origin={self.origin}, modality={self.modality!r}, path={self.path!r})"
        )


def check_slice_index(path: str, shape: tuple[int, ...], index: int, axis: int) -> None:
    """Refuse a slice ``index`` along ``axis`` that a ``(Z, Y, X)`` volume of ``shape`` does not have.

    Raises:
        InvalidImageError: naming ``path``, the axis and the valid range.
    """
    if not 0 <= axis < 3:
        raise InvalidImageError(path, f"axis {axis} is not an axis of a 3D volume (0, 1 or 2)")
    if not 0 <= index < shape[axis]:
        raise InvalidImageError(path, f"slice {index} is outside 0..{shape[axis] - 1} along axis {axis}")


@dataclass(frozen=True, eq=False)
class Prompt:
    """One prompt for one object, in the pixel coordinates of the original image.

    Attributes:
        points: ``(N, 2)`` float array of ``(x, y)`` pixel coordinates, or None.
        labels: ``(N,)`` int array, 1 = positive (foreground) click, 0 = negative; None iff no points.
        box: ``(4,)`` float array ``(x0, y0, x1, y1)`` in pixels, inclusive, or None.
        mask_input: ``(256, 256)`` float32 low-resolution logits from a previous prediction (SAM's
            ``mask_input``), or None.
        meta: free-form facts about how the prompt was made (e.g. ``{"point_rule": "centroid"}``);
            written into the result row.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.points is None) != (self.labels is None):
            raise ValueError("points and labels must be given together")
        if self.points is not None:
            points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
            labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
            if len(points) != len(labels):
                raise ValueError(f"{len(points)} points but {len(labels)} labels")
            if not np.isfinite(points).all():
                raise ValueError(f"point coordinates must be finite numbers, got {points.tolist()}")
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(f"point labels must be 1 (positive) or 0 (negative), got {labels.tolist()}")
            object.__setattr__(self, "points", points)
            object.__setattr__(self, "labels", labels)
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64).reshape(4)
            if not np.isfinite(box).all():
                raise ValueError(f"box coordinates must be finite numbers, got {box.tolist()}")
            if box[2] < box[0] or box[3] < box[1]:
                raise ValueError(f"box {box.tolist()} is not (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1")
            object.__setattr__(self, "box", box)

    @property
    def is_empty(self) -> bool:
        return self.points is None and self.box is None and self.mask_input is None

    def fitted_to(self, shape: tuple[int, ...]) -> Prompt:
        """This prompt on an image of ``shape`` ``(H, W, ...)``: the one rule for prompts that leave it.

        Points must lie on the image (``0 <= x <= W - 1``, ``0 <= y <= H - 1``). A box that overlaps
        the image is clipped to it and the prompt's meta records ``"box_clipped": true``; a box
        entirely outside is refused.

        Raises:
            ValueError: a point off the image, or a box that misses it (the message gives the values).
        """
        height, width = int(shape[0]), int(shape[1])
        if self.points is not None:
            outside = (self.points[:, 0] < 0) | (self.points[:, 0] > width - 1)
            outside |= (self.points[:, 1] < 0) | (self.points[:, 1] > height - 1)
            if outside.any():
                raise ValueError(
                    f"point {self.points[outside][0].tolist()} lies outside the {width} x {height} image "
                    f"(x in 0..{width - 1}, y in 0..{height - 1})"
                )
        if self.box is None:
            return self
        x0, y0, x1, y1 = self.box
        if x1 < 0 or y1 < 0 or x0 > width - 1 or y0 > height - 1:
            raise ValueError(f"box {self.box.tolist()} lies entirely outside the {width} x {height} image")
        clipped = np.array([max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)])
        if np.array_equal(clipped, self.box):
            return self
        return Prompt(self.points, self.labels, clipped, self.mask_input, {**self.meta, "box_clipped": True})

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable description (points, labels, box; the mask input is not stored)."""
        return {
            "points": None if self.points is None else self.points.tolist(),
            "labels": None if self.labels is None else self.labels.tolist(),
            "box": None if self.box is None else self.box.tolist(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prompt:
        """Inverse of :meth:`to_record`."""
        points = record.get("points")
        labels = record.get("labels")
        box = record.get("box")
        return cls(
            points=None if points is None else np.asarray(points, dtype=np.float64),
            labels=None if labels is None else np.asarray(labels, dtype=np.int64),
            box=None if box is None else np.asarray(box, dtype=np.float64),
        )


def present(part: np.ndarray | None) -> np.ndarray:
    """A prompt part (points, labels, box, mask input) that the caller grouped prompts by having.

    Raises:
        ValueError: it is missing (prompts with and without it were mixed in one batch).
    """
    if part is None:
        raise ValueError("a batch mixes prompts with and without one part (points, labels, box or mask input)")
    return part
