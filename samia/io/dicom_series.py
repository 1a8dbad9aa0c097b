"""Which files of a DICOM folder form one volume, and in which order: checked from the headers alone.

One *SeriesInstanceUID* can hide files that do not stack into one volume. Before any pixel is
decoded, :func:`series_slices` reads every header of the folder and refuses, naming the series, the
slice file and the rule it breaks:

- files of several series (each belongs in its own folder);
- a slice of another size (*Rows* x *Columns*), without *ImagePositionPatient* or
  *ImageOrientationPatient*, with another orientation (any direction cosine differs by more than
  :data:`ORIENTATION_TOLERANCE`), or another *PixelSpacing* (relative difference above
  :data:`SPACING_TOLERANCE`);
- slices that share a position: several echoes, phases or temporal positions of one series (the
  first of :data:`SPLITTING_TAGS` whose values tell them apart is named), else plain duplicates;
- slices that do not lie along the slice normal (a gantry tilt: the stack is sheared and would be
  read as if it were not);
- uneven gaps: a gap along the normal that differs from the smallest gap by more than
  :data:`GAP_TOLERANCE` (a missing slice, or a variable-thickness protocol).

Localizers (*ImageType* containing ``LOCALIZER``) in the folder are left out with an
:class:`~samia.errors.InputWarning` naming them, as dcm2niix and GDCM's scanners separate them.
The remaining slices are sorted along the normal (ascending), as GDCM's ``IPPSorter`` does, which
is the order the volume's first axis has and a DICOM-SEG's frames reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from samia.errors import CorruptFileError, InvalidImageError, MissingFileError, warn_input

ORIENTATION_TOLERANCE = 1e-4
"""Largest difference of one direction cosine (*ImageOrientationPatient*) between slices."""
SPACING_TOLERANCE = 1e-4
"""Largest relative difference of *PixelSpacing* between slices."""
GAP_TOLERANCE = 0.01
"""Largest relative difference of one slice gap from the smallest gap (1 %)."""
TILT_TOLERANCE = 1e-3
"""Largest in-plane drift of the slice positions, relative to the distance along the normal."""
SPLITTING_TAGS = (
    "EchoNumbers",
    "EchoTime",
    "TemporalPositionIdentifier",
    "TriggerTime",
    "AcquisitionNumber",
    "DiffusionBValue",
    "InversionTime",
    "ImageType",
)
"""Tags that tell apart slices at one position within a series (echoes, phases, repeats, ...)."""


@dataclass(frozen=True)
class SeriesSlice:
    """One file of a series, as its header describes it.

    Attributes:
        path: the file.
        header: its data set without pixel data.
        position: *ImagePositionPatient*, ``(3,)`` float64 mm, or None.
        orientation: *ImageOrientationPatient*, ``(6,)`` float64, or None.
    """

    path: Path
    header: Dataset
    position: np.ndarray | None
    orientation: np.ndarray | None

    @property
    def size(self) -> tuple[int, int]:
        """``(Rows, Columns)``."""
        return int(self.header.get("Rows") or 0), int(self.header.get("Columns") or 0)

    @property
    def is_localizer(self) -> bool:
        return any(str(v).upper() == "LOCALIZER" for v in tag_values(self.header.get("ImageType")))


def series_slices(folder: Path) -> list[SeriesSlice]:
    """The image files of the one DICOM series in ``folder``, checked and sorted along the slice normal.

    Files that are not DICOM, or DICOM without an image (*Rows* absent), are ignored; sub-folders are
    not searched. A series of one file is returned as it is (nothing to stack).

    Raises:
        MissingFileError: the folder holds no DICOM image.
        InvalidImageError: several series, or one of the rules of the module docstring broken (the
            message names the series, the slice file and the rule).
    """
    slices = [s for s in (_read_header(path) for path in _files(folder)) if s is not None]
    if not slices:
        raise MissingFileError(folder, "folder contains no DICOM image series")
    by_series: dict[str, list[SeriesSlice]] = defaultdict(list)
    for item in slices:
        by_series[str(item.header.get("SeriesInstanceUID", ""))].append(item)
    if len(by_series) > 1:
        names = "; ".join(_series_name(uid, members) for uid, members in by_series.items())
        raise InvalidImageError(
            folder, f"folder contains {len(by_series)} DICOM series ({names}); put each series in its own folder"
        )
    localizers = [s for s in slices if s.is_localizer]
    if localizers and len(localizers) < len(slices):
        warn_input(
            folder,
            f"left out {len(localizers)} localizer image(s) ({', '.join(s.path.name for s in localizers[:5])}; "
            "ImageType LOCALIZER) that are not slices of the volume",
        )
        slices = [s for s in slices if not s.is_localizer]
    if len(slices) == 1:
        return slices
    return _checked_stack(_series_name(next(iter(by_series)), slices), slices)


def _checked_stack(series: str, slices: list[SeriesSlice]) -> list[SeriesSlice]:
    """``slices`` sorted along the normal, after the per-slice and whole-stack rules."""
    first = slices[0]
    for item in slices:
        _check_like_first(series, item, first)
    assert first.orientation is not None  # checked above: every slice has one
    row, column = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, column)
    normal /= np.linalg.norm(normal)
    distance = np.array([float(s.position @ normal) for s in slices])
    order = np.argsort(distance, kind="stable")
    slices = [slices[i] for i in order]
    distance = distance[order]
    _check_distinct_positions(series, slices, distance)
    _check_no_tilt(series, slices, normal)
    _check_even_gaps(series, slices, distance)
    return slices


def _check_like_first(series: str, item: SeriesSlice, first: SeriesSlice) -> None:
    where = f"{item.path}: slice of series {series}"
    if item.size != first.size:
        raise InvalidImageError(
            where,
            f"is {item.size[0]} x {item.size[1]} pixels, {first.path.name} is {first.size[0]} x {first.size[1]}; "
            "slices of one volume have one size",
        )
    if item.position is None:
        raise InvalidImageError(where, "has no usable ImagePositionPatient, so its place in the stack is unknown")
    if item.orientation is None or np.linalg.norm(np.cross(item.orientation[:3], item.orientation[3:])) < 1e-6:
        raise InvalidImageError(where, "has no usable ImageOrientationPatient, so the stack direction is unknown")
    if first.orientation is None:  # the first slice is checked first, with itself
        return
    difference = float(np.max(np.abs(item.orientation - first.orientation)))
    if difference > ORIENTATION_TOLERANCE:
        raise InvalidImageError(
            where,
            f"ImageOrientationPatient {_fmt(item.orientation)} differs from {first.path.name}'s "
            f"{_fmt(first.orientation)} (by {difference:.2g} > {ORIENTATION_TOLERANCE:g}); a rotated slice "
            "cannot be stacked with the others",
        )
    own, reference = _spacing(item.header), _spacing(first.header)
    if own is not None and reference is not None and not np.allclose(own, reference, rtol=SPACING_TOLERANCE, atol=0):
        raise InvalidImageError(
            where,
            f"PixelSpacing {_fmt(own)} differs from {first.path.name}'s {_fmt(reference)}; "
            "slices of one volume share one pixel spacing",
        )


def _check_distinct_positions(series: str, slices: Sequence[SeriesSlice], distance: np.ndarray) -> None:
    """Refuse slices sharing a position; name the tag that tells them apart when one does."""
    step = np.diff(distance)
    scale = max(float(np.max(np.abs(step))), 1e-6)
    same = np.flatnonzero(np.abs(step) <= 1e-4 * scale + 1e-6)
    if same.size == 0:
        return
    a, b = slices[same[0]], slices[same[0] + 1]
    for tag in SPLITTING_TAGS:
        values = [_tag_text(s.header, tag) for s in slices]
        if values[same[0]] != values[same[0] + 1]:
            counts: defaultdict[str, int] = defaultdict(int)
            for value in values:
                counts[value] += 1
            groups = ", ".join(f"{value or 'absent'}: {count} files" for value, count in sorted(counts.items()))
            raise InvalidImageError(
                a.path.parent,
                f"series {series} holds several volumes at the same positions, told apart by {tag} ({groups}; "
                f"e.g. {a.path.name} and {b.path.name}); put each {tag} value's files in its own folder",
            )
    raise InvalidImageError(
        b.path,
        f"slice of series {series} has the same ImagePositionPatient {_fmt(b.position)} as {a.path.name} "
        "(a duplicated slice); remove one of them",
    )


def _check_no_tilt(series: str, slices: Sequence[SeriesSlice], normal: np.ndarray) -> None:
    """Refuse positions that drift across the plane (gantry tilt): ITK would stack them unsheared."""
    offsets = np.array([s.position - slices[0].position for s in slices])  # type: ignore[operator]
    along = offsets @ normal
    drift = np.linalg.norm(offsets - along[:, None] * normal[None, :], axis=1)
    length = max(float(abs(along[-1])), 1e-6)
    worst = int(np.argmax(drift))
    if drift[worst] > TILT_TOLERANCE * length:
        angle = float(np.degrees(np.arctan2(drift[worst], abs(along[worst]) or 1e-9)))
        tilt = slices[0].header.get("GantryDetectorTilt")
        declared = f"; GantryDetectorTilt = {tilt}" if tilt not in (None, "") else ""
        raise InvalidImageError(
            slices[worst].path.parent,
            f"series {series} is sheared: slice positions drift {angle:.2f} degrees off the slice normal "
            f"(gantry tilt{declared}; e.g. {slices[worst].path.name}); samia does not resample tilted "
            "series: convert it with tilt correction (dcm2niix) and read the NIfTI",
        )


def _check_even_gaps(series: str, slices: Sequence[SeriesSlice], distance: np.ndarray) -> None:
    gaps = np.diff(distance)
    smallest = float(gaps.min())
    deviation = np.abs(gaps - smallest) / smallest
    worst = int(np.argmax(deviation))
    if deviation[worst] > GAP_TOLERANCE:
        raise InvalidImageError(
            slices[worst].path.parent,
            f"series {series}: the {len(slices)} slices are not evenly spaced: the gap between "
            f"{slices[worst].path.name} and {slices[worst + 1].path.name} is {gaps[worst]:.4g} mm, the smallest "
            f"gap is {smallest:.4g} mm (allowed {GAP_TOLERANCE:.0%}); a slice may be missing, or the protocol "
            "varies its spacing (resample it, e.g. with dcm2niix, and read the NIfTI)",
        )


def _files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise MissingFileError(folder, f"folder cannot be listed ({error.strerror or error})") from None
    return [path for path in entries if path.is_file()]


def _read_header(path: Path) -> SeriesSlice | None:
    """The slice of an image file; None for a file that is not DICOM or holds no image."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if "Rows" not in header:
        return None
    try:
        return SeriesSlice(
            path, header, _vector(header, "ImagePositionPatient", 3), _vector(header, "ImageOrientationPatient", 6)
        )
    except (ValueError, TypeError) as error:
        raise CorruptFileError(path, f"DICOM header cannot be read ({error})") from None


def _vector(header: Dataset, keyword: str, length: int) -> np.ndarray | None:
    numbers = tag_numbers(header.get(keyword))
    if len(numbers) != length or not np.all(np.isfinite(numbers)):
        return None
    return np.asarray(numbers, dtype=np.float64)


def _spacing(header: Dataset) -> np.ndarray | None:
    numbers = tag_numbers(header.get("PixelSpacing"))
    return np.asarray(numbers) if len(numbers) == 2 else None


def tag_numbers(value: object) -> list[float]:
    """A DICOM numeric value (one number or several) as floats; ``[]`` when missing or not numeric."""
    try:
        return [float(str(v)) for v in tag_values(value)]  # DS strings, IS, floats alike
    except (TypeError, ValueError):
        return []


def tag_values(value: object) -> list[object]:
    """A DICOM value as a list: ``[]`` when missing or empty, the items of a multi-valued one."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def _tag_text(header: Dataset, keyword: str) -> str:
    return "\\".join(str(v) for v in tag_values(header.get(keyword)))


def _series_name(uid: str, members: Sequence[SeriesSlice]) -> str:
    """``"<SeriesNumber> <SeriesDescription> (<n> files, UID ...)"``, for messages."""
    header = members[0].header
    label = " ".join(str(v) for v in (header.get("SeriesNumber"), header.get("SeriesDescription")) if v)
    return f"{label + ' ' if label else ''}({len(members)} files, UID {uid or 'absent'})"


def _fmt(values: object) -> str:
    return "[" + ", ".join(f"{float(v):.6g}" for v in np.asarray(values).ravel()) + "]"
