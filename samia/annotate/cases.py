"""The cases of an annotation folder's data: images with or without ground truth, from any dataset
layout samia reads, a plain folder of images (or DICOM series folders), or one image file.

Every case gets an id made here (``c1``, ``c2``, ... in listing order): a client names cases by these
ids only, never by a path. A case's image must lie inside the data folder once every symlink is
resolved; one that does not (a symlink out) is listed as a problem and never opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from samia.data.manifest import scan_dataset
from samia.errors import DatasetLayoutError, InputError, MissingMaskError, SamiaError
from samia.io.formats import image_stem, is_supported


@dataclass(frozen=True)
class AnnotationCase:
    """One image to annotate.

    Attributes:
        id: the server's id of the case (``c<number>``).
        name: the case's folder name in the annotation folder (its dataset case id, made a plain
            file name).
        image_path: the image file or DICOM series folder, resolved, inside the data folder.
        ground_truth: its label map when the dataset has one, else None.
        modality: the dataset's modality, or None for the file's own.
        label_names: label value -> object name from ``dataset.json``.
    """

    id: str
    name: str
    image_path: Path
    ground_truth: Path | None
    modality: str | None = None
    label_names: dict[int, str] = field(default_factory=dict)


def inside(path: Path, root: Path) -> Path:
    """``path`` resolved (symlinks followed), checked to lie inside ``root`` (resolved).

    Raises:
        InputError: it lies outside (``..``, an absolute path elsewhere, a symlink out).
    """
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise InputError(path, f"lies outside {base}; refused")
    return resolved


def _plain_name(case_id: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", case_id).lstrip("._-")[:100] or "case"
    unique, number = name, 2
    while unique in taken:
        unique, number = f"{name}_{number}", number + 1
    taken.add(unique)
    return unique


def find_cases(data: Path) -> tuple[list[AnnotationCase], list[SamiaError]]:
    """The cases of ``data`` and the files that cannot be cases (each error names its file).

    A dataset layout (see :func:`samia.data.scan_dataset`) gives its pairs (with ground truth) and
    its images without masks; any other folder gives its supported entries (``images/`` when there
    is one); a file is the one case.

    Raises:
        DatasetLayoutError: ``data`` does not exist or holds no image.
    """
    data = Path(data).expanduser()
    if not data.exists():
        raise DatasetLayoutError(data, "does not exist")
    root = data if data.is_dir() else data.parent
    found: list[tuple[str, Path, Path | None, str | None, dict[int, str]]] = []
    problems: list[SamiaError] = []
    if data.is_file():
        found.append((image_stem(data), data, None, None, {}))
    else:
        try:
            scan = scan_dataset(data)
        except DatasetLayoutError:
            folder = data / "images" if (data / "images").is_dir() else data
            entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and is_supported(p))
            found = [(p.name if p.is_dir() else image_stem(p), p, None, None, {}) for p in entries]
        else:
            names = dict(scan.label_names)
            found = [(case, image, label, scan.modality, names) for case, image, label in scan.pairs]
            for problem in scan.problems:
                if isinstance(problem, MissingMaskError):
                    found.append((problem.case_id, Path(problem.path), None, scan.modality, names))
                else:
                    problems.append(problem)
            found.sort(key=lambda entry: entry[0])
    cases: list[AnnotationCase] = []
    taken: set[str] = set()
    for case_id, image, label, modality, names in found:
        try:
            image = inside(image, root)
            label = None if label is None else inside(label, root)
        except InputError as error:
            problems.append(error)
            continue
        number = len(cases) + 1
        cases.append(AnnotationCase(f"c{number}", _plain_name(case_id, taken), image, label, modality, names))
    if not cases:
        detail = f"; first problem: {problems[0]}" if problems else ""
        raise DatasetLayoutError(data, f"holds no image to annotate{detail}")
    return cases, problems
