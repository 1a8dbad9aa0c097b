"""Multi-rater datasets: one 2D image, one mask per rater, and the difference between a rater who
did not annotate a case and a rater who annotated it empty.

Three layouts (:data:`RATER_LAYOUTS`), each with ``ROOT/images/<case>.<ext>`` (any 2D format samia
reads) and an optional ``ROOT/dataset.json`` (``name``, ``modality``, ``labels``, ``raters``):

``rater_folders``
    ``ROOT/raters/<rater>/<case>.<ext>``: one folder per rater, named by the rater. A rater folder
    without ``<case>`` means that rater did not annotate the case.
``rater_suffix``
    ``ROOT/masks/<case>_<rater>.<ext>``, with the rater names listed in ``dataset.json``
    (``"raters": ["r1", "r2", ...]``), so a case id holding ``_`` is never cut in the wrong place.
    A missing ``<case>_<rater>`` file means that rater did not annotate the case.
``rater_stack``
    ``ROOT/stacks/<case>.npz`` holding ``masks``, a ``(K, H, W)`` integer array (one label map per
    rater, in the order of ``dataset.json``'s ``raters``, else named ``rater_0``...), and optionally
    ``annotated``, a ``(K,)`` bool array (False: that rater did not annotate the case), or
    ``ROOT/stacks/<case>.npy`` with the ``(K, H, W)`` array alone, where a plane of ``-1``
    everywhere marks a rater who did not annotate it.

A rater's file that exists but holds no object is an annotation: "nothing here". Each rater's file
is a label map; label value ``v > 0`` is the same object for every rater of the case. An object's
raters are the raters who annotated its case, so ``K`` varies from case to case (LIDC-IDRI exports
one case per nodule and slice, with the one to four radiologists who drew it: see the guide).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samia.data.layouts import (
    DATASET_JSON,
    dataset_name,
    modality_from_json,
    parse_label_names,
    read_dataset_json,
)
from samia.errors import (
    DatasetLayoutError,
    GeometryMismatchError,
    InvalidLabelError,
    MissingFileError,
    MissingMaskError,
    SamiaError,
)
from samia.files import file_sha256
from samia.io.formats import image_stem, is_supported
from samia.io.readers import read_image, read_label
from samia.types import Image2D

RATER_LAYOUTS = ("rater_folders", "rater_suffix", "rater_stack")
"""The multi-rater layouts (module docstring)."""

NOT_ANNOTATED = -1
"""The value filling a ``.npy`` stack's plane of a rater who did not annotate the case."""


@dataclass(frozen=True)
class RaterCase:
    """One image and where each rater's annotation of it lies.

    Attributes:
        case_id: the image's stem.
        image_path: the image file.
        rater_paths: rater -> that rater's label map file (``rater_folders``, ``rater_suffix``);
            only the raters who annotated the case. Empty for ``rater_stack``.
        stack_path: the ``.npz`` / ``.npy`` stack (``rater_stack``), else None.
    """

    case_id: str
    image_path: Path
    rater_paths: dict[str, Path] = field(default_factory=dict)
    stack_path: Path | None = None


@dataclass
class RaterScan:
    """What a multi-rater dataset folder holds.

    Attributes:
        root: the dataset folder.
        layout: one of :data:`RATER_LAYOUTS`.
        dataset: ``dataset.json``'s ``name``, else the folder name.
        modality: from ``dataset.json``, or None (each image's own).
        label_names: label value -> name (values > 0).
        raters: every rater name of the dataset, in order (``dataset.json``'s ``raters`` first,
            then folder names sorted; a stack without names: ``rater_0``...).
        cases: one per image with at least one rater's annotation, sorted by case id.
        problems: one error per unusable file (an image no rater annotated, a mask without image,
            a mask named by no known rater).
    """

    root: Path
    layout: str
    dataset: str
    modality: str | None
    label_names: dict[int, str]
    raters: tuple[str, ...]
    cases: list[RaterCase]
    problems: list[SamiaError]


@dataclass(frozen=True)
class RaterObject:
    """One object of a case as each of its raters drew it.

    Attributes:
        label: the label value.
        raters: the raters who annotated the case, in the dataset's order.
        masks: ``(K, H, W)`` bool, one mask per rater of ``raters`` (an empty one: that rater saw
            no such object).
    """

    label: int
    raters: tuple[str, ...]
    masks: np.ndarray


def detect_rater_layout(root: str | Path) -> str | None:
    """The multi-rater layout of ``root``, or None when it has none (a one-truth dataset)."""
    root = Path(root)
    if (root / "raters").is_dir():
        return "rater_folders"
    if (root / "stacks").is_dir():
        return "rater_stack"
    content = read_dataset_json(root) if (root / DATASET_JSON).is_file() else None
    if content and content.get("raters") and (root / "masks").is_dir():
        return "rater_suffix"
    return None


def rater_layout_of(root: str | Path, layout: str = "auto") -> str | None:
    """The multi-rater layout a run on ``root`` reads: ``layout`` when it names one of
    :data:`RATER_LAYOUTS`, the detected one with ``"auto"``, else None (one-truth data)."""
    if layout in RATER_LAYOUTS:
        return layout
    return detect_rater_layout(root) if layout == "auto" else None


def rater_data_sha256(cases: list[RaterCase]) -> str:
    """One SHA-256 over ``cases``: each case id with the names and contents of its image and rater files."""

    def case_sha256(case: RaterCase) -> str:
        files = [case.image_path, *(case.rater_paths[r] for r in sorted(case.rater_paths))]
        if case.stack_path is not None:
            files.append(case.stack_path)
        return hashlib.sha256("|".join(f"{p.name}:{file_sha256(p)}" for p in files).encode()).hexdigest()

    return hashlib.sha256("|".join(f"{c.case_id}:{case_sha256(c)}" for c in cases).encode()).hexdigest()


def _named_raters(content: dict[str, Any], root: Path) -> list[str]:
    names = content.get("raters") or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise DatasetLayoutError(root / DATASET_JSON, '"raters" must be a list of rater names (strings)')
    if len(set(names)) != len(names):
        raise DatasetLayoutError(root / DATASET_JSON, f'"raters" names a rater twice: {names}')
    return list(names)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_supported(p))


def scan_rater_dataset(root: str | Path, layout: str = "auto") -> RaterScan:
    """List a multi-rater dataset's cases (module docstring for the layouts).

    Raises:
        DatasetLayoutError: no multi-rater layout (with ``"auto"``), an unknown layout, a missing
            ``images/``, or a ``dataset.json`` whose ``raters`` is not a list of distinct names.
    """
    root = Path(root).resolve()
    found = detect_rater_layout(root) if layout == "auto" else layout
    if found is None:
        raise DatasetLayoutError(
            root, 'no multi-rater layout: expected raters/<rater>/, stacks/, or masks/ with dataset.json "raters"'
        )
    if found not in RATER_LAYOUTS:
        raise DatasetLayoutError(root, f"unknown multi-rater layout {found!r}; known: {', '.join(RATER_LAYOUTS)}")
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise DatasetLayoutError(root, f"a multi-rater layout needs images/; {images_dir} is missing")
    content = read_dataset_json(root) or {}
    names = _named_raters(content, root)
    label_names, _ = parse_label_names(content.get("labels"), root / DATASET_JSON)
    images = {image_stem(p): p for p in _files(images_dir)}
    problems: list[SamiaError] = []
    annotations: dict[str, Any]  # case -> {rater: file} (files), or the case's stack file
    if found == "rater_folders":
        annotations, raters = _scan_folders(root / "raters", names, problems)
    elif found == "rater_suffix":
        if not names:
            raise DatasetLayoutError(root / DATASET_JSON, 'the rater_suffix layout needs "raters": [names]')
        annotations, raters = _scan_suffixes(root / "masks", names, set(images), problems), names
    else:
        annotations, raters = _scan_stacks(root / "stacks", problems), names
    cases = []
    for case_id, image in sorted(images.items()):
        found_for = annotations.pop(case_id, None)
        if found_for is None:
            problems.append(MissingMaskError(image, "no rater annotated this image", case_id))
        elif isinstance(found_for, Path):
            cases.append(RaterCase(case_id, image, stack_path=found_for))
        else:
            cases.append(RaterCase(case_id, image, rater_paths=found_for))
    for case_id in sorted(annotations):
        leftover = annotations[case_id]
        paths = [leftover] if isinstance(leftover, Path) else list(leftover.values())
        for path in paths:
            problems.append(MissingFileError(path, f"annotation has no image; expected {images_dir / case_id}.<ext>"))
    return RaterScan(
        root=root,
        layout=found,
        dataset=dataset_name(content, root),
        modality=modality_from_json(content, "modality"),
        label_names=label_names,
        raters=tuple(raters),
        cases=cases,
        problems=sorted(problems, key=lambda e: str(getattr(e, "path", e))),
    )


def _scan_folders(
    folder: Path, names: list[str], problems: list[SamiaError]
) -> tuple[dict[str, dict[str, Path]], list[str]]:
    folders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    raters = names + [p.name for p in folders if p.name not in names]
    annotations: dict[str, dict[str, Path]] = {}
    for rater_folder in folders:
        for path in _files(rater_folder):
            per_rater = annotations.setdefault(image_stem(path), {})
            if rater_folder.name in per_rater:
                problems.append(
                    DatasetLayoutError(path, f"rater {rater_folder.name!r} has two files for {image_stem(path)!r}")
                )
            per_rater[rater_folder.name] = path
    return annotations, raters


def _scan_suffixes(
    folder: Path, raters: list[str], image_stems: set[str], problems: list[SamiaError]
) -> dict[str, dict[str, Path]]:
    annotations: dict[str, dict[str, Path]] = {}
    by_length = sorted(raters, key=len, reverse=True)  # "r10" before "r1" on a name ending "_r10"
    for path in _files(folder):
        stem = image_stem(path)
        rater = next((r for r in by_length if stem.endswith(f"_{r}") and stem[: -len(r) - 1] in image_stems), None)
        if rater is None:
            problems.append(
                DatasetLayoutError(path, f"name is not <case>_<rater> for an image's case and a rater of {raters}")
            )
            continue
        annotations.setdefault(stem[: -len(rater) - 1], {})[rater] = path
    return annotations


def _scan_stacks(folder: Path, problems: list[SamiaError]) -> dict[str, Path]:
    stacks: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in (".npz", ".npy") and not path.name.startswith("."):
            if path.stem in stacks:
                problems.append(DatasetLayoutError(path, f"two stacks share the case {path.stem!r}; keep one"))
            stacks[path.stem] = path
    return stacks


def read_rater_labels(case: RaterCase, scan: RaterScan) -> tuple[Image2D, dict[str, np.ndarray]]:
    """The case's image and, per rater who annotated it, that rater's ``(H, W)`` integer label map.

    Raises:
        InputError: (subclasses) an unreadable file; a 3D image (multi-rater cases are 2D); a
            rater's map of another shape than the image; a stack that is not ``(K, H, W)``
            integers, whose ``annotated`` has not ``K`` entries, or with more planes than named raters.
    """
    image = read_image(case.image_path, modality=scan.modality)
    if not isinstance(image, Image2D):
        raise InvalidLabelError(
            case.image_path, f"multi-rater cases are 2D images; this one is 3D {image.shape} (export its slices)"
        )
    labels = _stack_labels(case.stack_path, scan.raters) if case.stack_path else _file_labels(case)
    for rater, plane in labels.items():
        if plane.shape != image.shape[:2]:
            where = case.stack_path or case.rater_paths[rater]
            raise GeometryMismatchError(
                where,
                f"rater {rater!r}'s mask shape {plane.shape} differs from image {case.image_path} {image.shape[:2]}",
            )
    return image, labels


def _file_labels(case: RaterCase) -> dict[str, np.ndarray]:
    labels = {}
    for rater, path in case.rater_paths.items():
        label = read_label(path)
        if not isinstance(label, Image2D):
            raise InvalidLabelError(path, f"rater {rater!r}'s mask is 3D {label.shape}; multi-rater masks are 2D")
        labels[rater] = np.asarray(label.array)
    return labels


def _stack_labels(path: Path, raters: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "masks" not in archive:
                    raise InvalidLabelError(path, f"stack has no 'masks' array (holds {sorted(archive.files)})")
                masks = archive["masks"]
                annotated = archive["annotated"] if "annotated" in archive else None
        else:
            masks, annotated = np.load(path, allow_pickle=False), None
    except (OSError, ValueError) as error:
        raise InvalidLabelError(path, f"cannot read the stack: {error}") from None
    if masks.ndim != 3 or masks.dtype.kind not in "iub":
        raise InvalidLabelError(path, f"stack must be a (K, H, W) integer array, got {masks.dtype} {masks.shape}")
    count = masks.shape[0]
    if annotated is None:
        annotated = ~np.all(masks == NOT_ANNOTATED, axis=(1, 2))
    elif annotated.shape != (count,):
        raise InvalidLabelError(
            path, f"'annotated' must hold {count} flags, one per plane; got shape {annotated.shape}"
        )
    names = raters or tuple(f"rater_{k}" for k in range(count))
    if count > len(names):
        raise InvalidLabelError(path, f"stack has {count} planes but the dataset names {len(names)} raters")
    kept = {names[k]: masks[k] for k in range(count) if annotated[k]}
    for rater, plane in kept.items():
        if plane.min() < 0:
            raise InvalidLabelError(
                path, f"rater {rater!r}'s plane holds negative labels (mark a missing rater by -1 everywhere)"
            )
    return {rater: plane.astype(np.int64) for rater, plane in kept.items()}


def rater_objects(labels: dict[str, np.ndarray], raters: tuple[str, ...], min_area: int = 0) -> list[RaterObject]:
    """The objects of a case: one per label value any rater drew, with every annotating rater's mask.

    Args:
        labels: :func:`read_rater_labels`'s maps, rater -> ``(H, W)`` int.
        raters: the dataset's rater order.
        min_area: an object whose raters' union covers fewer pixels is left out.

    Returns:
        objects sorted by label; their ``raters`` follow ``raters``' order.
    """
    present = tuple(r for r in raters if r in labels) + tuple(sorted(set(labels) - set(raters)))
    values = sorted({int(v) for plane in labels.values() for v in np.unique(plane) if v > 0})
    objects = []
    for value in values:
        masks = np.stack([labels[rater] == value for rater in present])
        if int(masks.any(axis=0).sum()) >= max(min_area, 1):
            objects.append(RaterObject(value, present, masks))
    return objects
