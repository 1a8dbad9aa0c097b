"""Dataset manifests: one :class:`Case` per (image, mask) pair of a dataset folder."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from samia.data.layouts import (
    LAYOUTS,
    LayoutScan,
    checked_class_name,
    detect_layout,
    instances_from_json,
    normalize_modality,
)
from samia.errors import DatasetLayoutError, SamiaError
from samia.files import printable

_log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("case_id", "image_path", "label_path", "modality", "dataset", "label_names", "instances_of")
"""Columns of :func:`manifest_frame`, in order."""


@dataclass(frozen=True)
class Case:
    """One image and its label map.

    Attributes:
        case_id: unique within its dataset (the file stem, e.g. ``"liver_003"``).
        image_path: the image file (or DICOM series folder), absolute.
        label_path: the label map file, absolute.
        modality: one of :data:`samia.types.MODALITIES` when the dataset or the user says; None to
            take the image file's own (a DICOM's *Modality* tag; ``"other"`` for files that carry none).
        dataset: the dataset name (``dataset.json`` ``"name"``, else the folder name).
        label_names: label value -> name; values missing from the dict are named ``f"label_{v}"``
            (see :meth:`label_name`). Background (0) is not an object and is not listed.
        instances_of: None when each label value is a class; else the label map numbers the
            objects of this one class (an instance map): every value is an object of it, named so.
    """

    case_id: str
    image_path: Path
    label_path: Path
    modality: str | None
    dataset: str
    label_names: dict[int, str] = field(default_factory=dict)
    instances_of: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "case_id", printable(self.case_id))  # names that are not UTF-8
        object.__setattr__(self, "image_path", Path(self.image_path))
        object.__setattr__(self, "label_path", Path(self.label_path))
        object.__setattr__(self, "label_names", {int(k): str(v) for k, v in self.label_names.items()})

    def __hash__(self) -> int:  # label_names is a dict, so hash the identifying fields only
        return hash((self.dataset, self.case_id, str(self.image_path), str(self.label_path)))

    def label_name(self, value: int) -> str:
        """The name of label ``value``: the class of an instance map, else the dataset's name for the
        value (``f"label_{value}"`` when it has none)."""
        if self.instances_of is not None:
            return self.instances_of
        return self.label_names.get(int(value), f"label_{int(value)}")

    def to_record(self) -> dict[str, Any]:
        """A flat JSON-serialisable row: paths as strings, ``label_names`` as a JSON string
        (``{"1": "liver"}``) so the row fits a Parquet table whatever the labels are."""
        return {
            "case_id": self.case_id,
            "image_path": str(self.image_path),
            "label_path": str(self.label_path),
            "modality": self.modality,
            "dataset": self.dataset,
            "label_names": json.dumps({str(k): v for k, v in sorted(self.label_names.items())}),
            "instances_of": self.instances_of,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Case:
        """Inverse of :meth:`to_record` (``label_names`` may be a JSON string or a mapping)."""
        names = record.get("label_names") or {}
        if isinstance(names, str):
            names = json.loads(names)
        return cls(
            case_id=str(record["case_id"]),
            image_path=Path(record["image_path"]),
            label_path=Path(record["label_path"]),
            modality=None if record.get("modality") is None else str(record["modality"]),
            dataset=str(record["dataset"]),
            label_names={int(k): str(v) for k, v in names.items()},
            instances_of=record.get("instances_of") or None,
        )


def scan_dataset(root: str | Path, layout: str = "auto") -> LayoutScan:
    """Run the layout adapter for ``root`` (detected when ``layout="auto"``) and return what it found.

    Raises:
        DatasetLayoutError: unknown ``layout`` name, ``root`` missing, or ``root`` does not follow
            the layout.
    """
    root = Path(root).expanduser().resolve()
    if layout != "auto" and layout not in LAYOUTS:
        raise DatasetLayoutError(root, f"unknown layout {layout!r}; expected one of auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise DatasetLayoutError(root, "is not a folder" if root.exists() else "dataset folder does not exist")
    name = detect_layout(root) if layout == "auto" else layout
    scan = LAYOUTS[name](root)
    return replace(scan, instances_of=instances_from_json(root))


def build_manifest(
    root: str | Path,
    layout: str = "auto",
    modality: str | None = None,
    errors: list[SamiaError] | None = None,
    instances: str | None = None,
) -> list[Case]:
    """All complete (image, mask) pairs of a dataset folder, as :class:`Case` objects sorted by ``case_id``.

    Args:
        root: the dataset folder.
        layout: ``"auto"``, ``"folder"``, ``"msd"`` or ``"nnunet"`` (see :mod:`samia.data.layouts`).
        modality: overrides what ``dataset.json`` and the files say (``"MRI"`` and the like are
            accepted and mapped to :data:`samia.types.MODALITIES`). Without it, ``dataset.json``'s
            modality applies when it gives one, else each image file's own (:class:`Case`).
        errors: when a list is given, every unusable file (an image without a mask, a mask without
            an image, two files with one stem, a missing file listed in ``dataset.json``) is
            appended to it as a :class:`~samia.errors.SamiaError` naming the file, and skipped; when
            None, the first such problem is raised.
        instances: the label maps number the objects of this class (instance maps); overrides
            ``dataset.json``'s ``"instances"``. None: as ``dataset.json`` says (default: classes).

    Returns:
        the cases, sorted by ``case_id``. Files are only listed here, not read: a corrupt file is
        found when the case is loaded (:func:`samia.data.iter_slice_items`).

    Raises:
        DatasetLayoutError: unknown layout, ``root`` does not follow it, or it holds no complete
            case (the message names ``root``).
        MissingFileError: (only when ``errors`` is None) an image without a mask — the message
            names the image and where its mask was expected — or a mask without an image.
        ConfigurationError: ``modality`` is not a modality samia knows, or ``instances`` (or
            ``dataset.json``'s) is not a class name.
    """
    override = normalize_modality(modality, strict=True) if modality is not None else None
    instances = None if instances is None else checked_class_name(instances, "--instances")
    scan = scan_dataset(root, layout)
    for note in scan.notes:
        _log.info("%s: %s", scan.root, note)
    if scan.problems:
        if errors is None:
            raise scan.problems[0]
        errors.extend(scan.problems)
    if not scan.pairs:
        detail = f"; {len(scan.problems)} unusable file(s), first: {scan.problems[0]}" if scan.problems else ""
        raise DatasetLayoutError(scan.root, f"no complete image/mask pair found ({scan.layout} layout){detail}")
    cases = [
        Case(
            case_id=case_id,
            image_path=image,
            label_path=label,
            modality=override or scan.modality,
            dataset=scan.dataset,
            label_names=dict(scan.label_names),
            instances_of=instances or scan.instances_of,
        )
        for case_id, image, label in scan.pairs
    ]
    cases.sort(key=lambda c: c.case_id)
    return cases


def manifest_frame(cases: Iterable[Case]) -> pd.DataFrame:
    """One row per case with the columns of :data:`MANIFEST_COLUMNS` (paths as strings,
    ``label_names`` as a JSON string). An empty input gives an empty frame with those columns."""
    return pd.DataFrame([case.to_record() for case in cases], columns=list(MANIFEST_COLUMNS))


def select_cases(cases: Sequence[Case], case_ids: Sequence[str] | None, source: str | Path) -> list[Case]:
    """The cases named ``case_ids`` (all of ``cases`` when None), in ``case_ids`` order.

    Raises:
        DatasetLayoutError: a named case is not in ``cases`` (the message names ``source`` and
            the missing ids).
    """
    if case_ids is None:
        return list(cases)
    by_id = {case.case_id: case for case in cases}
    missing = [case_id for case_id in case_ids if case_id not in by_id]
    if missing:
        raise DatasetLayoutError(source, f"has no case {', '.join(missing[:5])} ({len(missing)} missing)")
    return [by_id[case_id] for case_id in case_ids]
