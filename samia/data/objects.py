"""From cases to 2D evaluation items: load image + label once, slice volumes, extract one mask per object.

An *object* is one label value present in a 2D label map, or (``connected_components=True``) one
8-connected component of one label value. Objects smaller than ``min_area`` pixels are not
returned but counted, so a benchmark can report how many it left out.

In an *instance map* (:attr:`~samia.data.Case.instances_of`: the values number the objects of
one class, e.g. each nucleus 1..N) every value is still one object (touching nuclei are never
merged into one component), but all are named by the one class, so results pool by class rather
than by an instance number that means nothing across images. A class map whose label value is
many disconnected pieces (:data:`PIECES_HINT` or more) gets an :class:`~samia.errors.InputWarning`
saying it may be objects, not one object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from samia.data.manifest import Case
from samia.errors import ConfigurationError, GeometryMismatchError, warn_input
from samia.io import read_image, read_label
from samia.io.formats import IMAGE_2D_SUFFIXES, file_suffix
from samia.types import Image2D, Volume

SPACING_RTOL = 1e-3
"""Image and label spacings may differ by this fraction (of the larger one) per axis."""

ORIGIN_TOLERANCE_VOXELS = 0.1
"""Image and label origins may lie this far apart, in units of the smallest voxel spacing."""

DIRECTION_ATOL = 1e-3
"""Image and label direction cosines may differ by this much each."""

PIECES_HINT = 10
"""A label value in this many 8-connected pieces or more on one plane is probably several objects."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True, eq=False)
class ObjectMask:
    """One object of one 2D label map.

    Attributes:
        label: the label value (> 0).
        name: the label's name (``f"label_{label}"`` when the dataset does not name it).
        component: None for a whole label value; with connected components, the component's rank
            by area within its label value on this slice (0 = largest; ties in raster order).
        mask: ``(H, W)`` bool, True on the object.
    """

    label: int
    name: str
    component: int | None
    mask: np.ndarray

    @property
    def area(self) -> int:
        """Number of pixels in the mask."""
        return int(np.count_nonzero(self.mask))

    def __repr__(self) -> str:
        return (
            f"ObjectMask(label={self.label}, name={self.name!r}, component={self.component}, "
            f"area={self.area}, shape={self.mask.shape})"
        )


@dataclass(frozen=True, eq=False)
class SliceItem:
    """One 2D image of a case with the objects to segment on it.

    Attributes:
        case: the case it comes from.
        slice_index: the index along ``axis`` for a volume; None for a 2D case.
        image: the 2D image (raw intensities) with spacing ``(y, x)`` in mm of its two axes.
        objects: the objects with at least ``min_area`` pixels, by label value then component.
        skipped_small: how many objects on this slice had fewer than ``min_area`` pixels.
        axis: the array axis the volume was sliced along; None for a 2D case.
    """

    case: Case
    slice_index: int | None
    image: Image2D
    objects: list[ObjectMask]
    skipped_small: int
    axis: int | None = None

    def __repr__(self) -> str:
        return (
            f"SliceItem(case={self.case.case_id!r}, slice_index={self.slice_index}, axis={self.axis}, "
            f"shape={self.image.shape}, objects={len(self.objects)}, skipped_small={self.skipped_small})"
        )


def extract_objects(
    labels: np.ndarray,
    names: Mapping[int, str] | None = None,
    min_area: int = 50,
    connected_components: bool = False,
    instances_of: str | None = None,
) -> tuple[list[ObjectMask], int]:
    """The objects of one 2D label map.

    Args:
        labels: ``(H, W)`` integer label map (any integer dtype, values kept); 0 is background.
        names: label value -> name; missing values are named ``f"label_{v}"``.
        min_area: objects with fewer pixels are skipped and counted (0 or 1 keeps everything).
        connected_components: one object per 8-connected component of each label value, ranked
            by area (largest first) within the value, instead of one object per value.
        instances_of: an instance map of this class: every value is one object named so.

    Returns:
        ``(objects ordered by label value then component, number skipped as too small)``;
        ``([], 0)`` for an all-background map.
    """
    if labels.ndim != 2:
        raise ValueError(f"expected a 2D label map, got shape {labels.shape}")
    if instances_of is not None and connected_components:
        raise ConfigurationError("an instance map's values are its objects already: leave out --connected-components")
    names = names or {}
    values, counts = np.unique(labels, return_counts=True)
    objects: list[ObjectMask] = []
    skipped = 0
    for value, count in zip(values.tolist(), counts.tolist()):
        if value == 0:
            continue
        name = instances_of or names.get(int(value), f"label_{int(value)}")
        if not connected_components:
            if count < min_area:
                skipped += 1
            else:
                objects.append(ObjectMask(int(value), name, None, labels == value))
            continue
        components, n = ndimage.label(labels == value, structure=_EIGHT_CONNECTED)
        sizes = np.bincount(components.ravel(), minlength=n + 1)[1:]
        for rank, index in enumerate(np.argsort(-sizes, kind="stable").tolist()):
            if sizes[index] < min_area:
                skipped += 1
            else:
                objects.append(ObjectMask(int(value), name, rank, components == index + 1))
    return objects, skipped


def _carries_spacing(path: str | Path) -> bool:
    """False for PNG/JPEG/TIFF/BMP files, whose pixel spacing samia does not read (1 mm is assumed):
    a PNG mask pairs with a DICOM or NIfTI image of any spacing."""
    path = Path(path)
    return path.is_dir() or file_suffix(path) not in IMAGE_2D_SUFFIXES


def _relative_spacing_ok(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(x - y) <= SPACING_RTOL * max(abs(x), abs(y)) for x, y in zip(a, b))


def _fmt(values: Sequence[float]) -> str:
    """``(3, 0.8, 0.82)`` rather than float32 noise such as ``0.800000011920929``."""
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


def load_case(case: Case) -> tuple[Image2D | Volume, Image2D | Volume]:
    """Read a case's image and label map once (with :mod:`samia.io`) and check they fit.

    :mod:`samia.io` reads a one-slice volume file as 2D, so a ``(1, H, W)`` NIfTI image pairs with
    a PNG mask.

    Returns:
        ``(image, label)``: both :class:`Image2D` or both :class:`Volume`, with equal grid shapes.

    Raises:
        InputError: (subclasses, from :mod:`samia.io`) a file is missing, unreadable or invalid.
        GeometryMismatchError: 2D against 3D, different shapes, or spacings that differ by more
            than :data:`SPACING_RTOL` (2D: when both files carry a spacing, i.e. neither is a
            PNG/JPEG/TIFF/BMP); origins more than :data:`ORIGIN_TOLERANCE_VOXELS` voxel apart or
            direction cosines more than :data:`DIRECTION_ATOL` apart (volumes, and 2D images when
            both files say where they lie: DICOM slices, one-slice NIfTI); the message names both
            files and both values.
    """
    image = read_image(case.image_path, modality=case.modality)
    label = read_label(case.label_path)
    if isinstance(image, Volume) != isinstance(label, Volume):
        raise GeometryMismatchError(
            case.label_path,
            f"mask is {'3D' if isinstance(label, Volume) else '2D'} with shape {label.shape} but image "
            f"{case.image_path} is {'3D' if isinstance(image, Volume) else '2D'} with shape {image.shape}",
        )
    if tuple(image.shape) != tuple(label.shape):
        raise GeometryMismatchError(
            case.label_path,
            f"mask shape {tuple(label.shape)} differs from image {case.image_path} shape {tuple(image.shape)}",
        )
    both_carry_spacing = isinstance(image, Volume) or (
        _carries_spacing(case.image_path) and _carries_spacing(case.label_path)
    )
    if both_carry_spacing and not _relative_spacing_ok(image.spacing, label.spacing):
        axes = "(z, y, x)" if isinstance(image, Volume) else "(y, x)"
        raise GeometryMismatchError(
            case.label_path,
            f"mask spacing {axes} {_fmt(label.spacing)} mm differs from image {case.image_path} "
            f"spacing {_fmt(image.spacing)} mm (tolerance {SPACING_RTOL:g} relative)",
        )
    _check_same_place(image, label, case)
    return image, label


def _place(image: Image2D | Volume) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(origin, direction)`` in patient space, or None for a 2D image that does not say where it lies."""
    if isinstance(image, Volume):
        return image.origin, image.direction
    if image.placement is None:
        return None
    return image.placement.origin, image.placement.direction


def _check_same_place(image: Image2D | Volume, label: Image2D | Volume, case: Case) -> None:
    """Image and label grids must lie at the same place in patient space (when both files say)."""
    image_place, label_place = _place(image), _place(label)
    if image_place is None or label_place is None:
        return
    tolerance = ORIGIN_TOLERANCE_VOXELS * min(image.spacing)
    offset = float(np.max(np.abs(np.subtract(image_place[0], label_place[0]))))
    if offset > tolerance:
        raise GeometryMismatchError(
            case.label_path,
            f"mask origin {_fmt(label_place[0])} mm differs from image {case.image_path} origin "
            f"{_fmt(image_place[0])} mm by {offset:.4g} mm (tolerance {tolerance:.4g} mm = "
            f"{ORIGIN_TOLERANCE_VOXELS:g} voxel); the mask does not lie on the image",
        )
    turned = float(np.max(np.abs(np.subtract(image_place[1], label_place[1]))))
    if turned > DIRECTION_ATOL:
        raise GeometryMismatchError(
            case.label_path,
            f"mask direction {_fmt(label_place[1])} differs from image {case.image_path} direction "
            f"{_fmt(image_place[1])} (tolerance {DIRECTION_ATOL:g} per cosine); the mask is oriented differently",
        )


def iter_slice_items(
    case: Case,
    axis: int = 0,
    min_area: int = 50,
    connected_components: bool = False,
    slices: Sequence[int] | None = None,
) -> Iterator[SliceItem]:
    """The 2D items of one case, streamed.

    The image and label are read once (:func:`load_case`); for a volume, one item is made per slice
    along ``axis`` that holds at least one label voxel, in increasing slice order, and each item is
    built only when requested (memory: the case's two arrays plus one slice). Slices are array
    planes as stored (no reorientation). A slice (or 2D case) whose objects are all smaller than
    ``min_area`` is yielded with ``objects=[]`` so its ``skipped_small`` can be counted; a slice
    with no label voxel is not yielded (nor is a 2D case whose label map is all background).

    Args:
        case: the case to load.
        axis: array axis of a ``(Z, Y, X)`` volume to slice along (0 = axial for a standard
            volume); ignored for 2D cases. The slice spacing is that of the two other axes.
        min_area: objects with fewer pixels are skipped and counted in ``skipped_small``.
        connected_components: one object per 8-connected component of each label value.
        slices: only these slice indices (still only those holding labels); ignored for 2D cases.

    Raises:
        ConfigurationError: ``axis`` not in 0..2, or a ``slices`` index outside the volume.
        GeometryMismatchError / InputError: from :func:`load_case` (raised on the first ``next``).
    """
    image, label = load_case(case)
    if isinstance(image, Image2D):
        assert isinstance(label, Image2D)
        objects, skipped = _objects(case, label.array, min_area, connected_components)
        if objects or skipped:
            yield SliceItem(case, None, image, objects, skipped)
        return
    assert isinstance(label, Volume)
    if axis not in (0, 1, 2, -1, -2, -3):
        raise ConfigurationError(f"axis must be 0, 1 or 2 for a (Z, Y, X) volume, got {axis}")
    axis %= 3
    depth = image.shape[axis]
    others = tuple(a for a in range(3) if a != axis)
    occupied = np.flatnonzero(np.any(label.array, axis=others))
    if slices is not None:
        wanted = sorted({int(s) for s in slices})
        outside = [s for s in wanted if not 0 <= s < depth]
        if outside:
            raise ConfigurationError(
                f"{case.case_id}: slice indices {outside} outside 0..{depth - 1} along axis {axis} of {case.image_path}"
            )
        occupied = np.intersect1d(occupied, np.asarray(wanted, dtype=np.int64))
    for index in occupied.tolist():
        plane = np.take(label.array, index, axis=axis)
        objects, skipped = _objects(case, plane, min_area, connected_components)
        if objects or skipped:
            yield SliceItem(case, int(index), image.slice(int(index), axis=axis), objects, skipped, axis)


def _objects(case: Case, plane: np.ndarray, min_area: int, connected_components: bool) -> tuple[list[ObjectMask], int]:
    """:func:`extract_objects` of one plane of ``case``, warning when a class looks like many objects."""
    if case.instances_of is None and not connected_components:
        _warn_if_pieces(case, plane)
    return extract_objects(plane, case.label_names, min_area, connected_components, case.instances_of)


def _warn_if_pieces(case: Case, plane: np.ndarray) -> None:
    for value in np.unique(plane).tolist():
        if value == 0:
            continue
        _, pieces = ndimage.label(plane == value, structure=_EIGHT_CONNECTED)
        if pieces >= PIECES_HINT:
            warn_input(
                case.label_path,
                f"label {value} ({case.label_name(value)}) is {pieces} disconnected pieces on one plane, evaluated "
                "as one object; if each piece is an object, use --connected-components (or, for a map numbering "
                "the objects of one class, --instances NAME)",
            )
            return
