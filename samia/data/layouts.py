"""Layout adapters: find the (image, mask) pairs of a dataset folder and what its ``dataset.json`` says.

Four layouts are understood (see :data:`LAYOUTS`):

``folder``
    ``ROOT/images/<stem>.<ext>`` paired with ``ROOT/masks/<stem>.<ext>`` by file stem
    (:func:`samia.io.formats.image_stem`); either side may use any supported format, e.g. an image
    ``.dcm`` with a mask ``.png``. A sub-folder of ``images/`` is a DICOM-series candidate named by
    the folder. An optional ``ROOT/dataset.json`` gives ``name``, ``modality`` and ``labels``.
``msd``
    Medical Segmentation Decathlon: ``ROOT/dataset.json`` with ``modality`` (``{"0": "MRI"}``),
    ``labels`` (``{"0": "background", "1": "..."}``) and a ``training`` list of
    ``{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}``; without a training list
    ``imagesTr/`` and ``labelsTr/`` are paired by stem.
``nnunet``
    nnU-Net v2 raw data: ``ROOT/dataset.json`` with ``channel_names`` (``{"0": "CT"}``), ``labels``
    (``{"background": 0, "liver": 1}``) and ``file_ending``; images ``imagesTr/<case>_0000<ending>``,
    labels ``labelsTr/<case><ending>``. Only channel ``0000`` is used: samia's models take one
    image per case, so further channels (``_0001`` ...) are ignored.
``cvpr24``
    The CVPR 2024 "MedSAM on a Laptop" challenge's NumPy archives: ``ROOT/<case>.npz`` holding
    ``imgs`` and ``gts``, or ``ROOT/imgs/<case>.npz`` with ``ROOT/gts/<case>.npz``
    (:mod:`samia.io.npz`; its ``spacing`` is read in ITK ``(x, y, z)`` order).

Every adapter returns a :class:`LayoutScan`: the complete pairs plus the problems found (an image
without a mask, a mask without an image, two files with one stem). :func:`samia.data.build_manifest`
turns it into :class:`~samia.data.Case` objects and decides whether problems raise or are recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samia.errors import ConfigurationError, DatasetLayoutError, MissingFileError, MissingMaskError, SamiaError
from samia.io.formats import SUPPORTED_SUFFIXES, image_stem, is_supported
from samia.types import MODALITIES

DATASET_JSON = "dataset.json"

NNUNET_CHANNEL = "0000"
"""The only nnU-Net channel samia reads (the first one)."""

_MODALITY_ALIASES: dict[str, str] = {
    **{modality.lower(): modality for modality in MODALITIES},
    # MR and its sequences as MSD / nnU-Net name their channels
    "mri": "MR", "t1": "MR", "t1w": "MR", "t1gd": "MR", "t1ce": "MR", "t1c": "MR", "t2": "MR", "t2w": "MR",
    "flair": "MR", "adc": "MR", "dwi": "MR", "pd": "MR", "swi": "MR", "cine": "MR", "bold": "MR",
    "cta": "CT", "cbct": "CT",
    "ultrasound": "US",
    "x-ray": "XR", "xray": "XR", "cxr": "XR", "cr": "XR", "dx": "XR", "radiograph": "XR",
    "cfp": "fundus",
    "colonoscopy": "endoscopy",
    "histology": "microscopy", "histopathology": "microscopy",
}  # fmt: skip


def normalize_modality(name: str, strict: bool = False) -> str:
    """Map a modality name as datasets write it (``"MRI"``, ``"T2"``, ``"ct"``) to one of :data:`MODALITIES`.

    Args:
        name: the name from a ``dataset.json`` or the user.
        strict: raise :class:`~samia.errors.ConfigurationError` for an unknown name (for user
            options) instead of returning ``"other"`` (for what a ``dataset.json`` says; nnU-Net's
            normalisation-scheme channel names such as ``"noNorm"`` or ``"zscore"`` land here).

    Returns:
        one of :data:`samia.types.MODALITIES`.
    """
    key = str(name).strip().lower()
    if key in _MODALITY_ALIASES:
        return _MODALITY_ALIASES[key]
    if strict:
        raise ConfigurationError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}")
    return "other"


@dataclass
class LayoutScan:
    """What a layout adapter found in one dataset folder.

    Attributes:
        root: the dataset folder (absolute).
        layout: ``"folder"``, ``"msd"``, ``"nnunet"`` or ``"cvpr24"``.
        dataset: the dataset name (``dataset.json`` ``"name"``, else the folder name).
        modality: one of :data:`MODALITIES` when ``dataset.json`` says; None when it does not (each
            case then takes its file's own modality, see :class:`~samia.data.Case`).
        label_names: label value -> name for values > 0 (background is not listed).
        instances_of: when the label maps number the objects of one class (instance maps, e.g. a
            microscopy mask numbering each nucleus 1..N): that class's name (``dataset.json``
            ``"instances": "nucleus"``); None when each label value is a class.
        pairs: ``(case_id, image_path, label_path)`` for every complete pair, sorted by case id.
        problems: one error per unusable file (image without mask, mask without image, duplicate
            stem), sorted by path.
        notes: facts the user should know (e.g. ignored nnU-Net channels).
    """

    root: Path
    layout: str
    dataset: str
    modality: str | None = None
    label_names: dict[int, str] = field(default_factory=dict)
    instances_of: str | None = None
    pairs: list[tuple[str, Path, Path]] = field(default_factory=list)
    problems: list[SamiaError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# dataset.json helpers


def read_dataset_json(root: Path) -> dict[str, Any] | None:
    """The parsed ``root/dataset.json``, or None when there is none.

    Raises:
        DatasetLayoutError: the file exists but is not a JSON object.
    """
    path = root / DATASET_JSON
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetLayoutError(path, f"cannot be parsed as JSON ({exc})") from exc
    if not isinstance(content, dict):
        raise DatasetLayoutError(path, f"must hold a JSON object, found {type(content).__name__}")
    return content


def instances_from_json(root: Path) -> str | None:
    """The class whose instances the label values number (``dataset.json`` ``"instances"``), or None.

    Raises:
        ConfigurationError: ``"instances"`` is there but not a class name.
    """
    value = (read_dataset_json(root) or {}).get("instances")
    if value is None:
        return None
    return checked_class_name(value, f'{root / DATASET_JSON}: "instances"')


def resolve_instances(data: str | Path, instances: str | None, connected_components: bool) -> str | None:
    """What a run records: ``instances`` (the ``--instances`` option, checked) when given, else
    what ``data``'s ``dataset.json`` says (None: each label value is a class).

    Raises:
        ConfigurationError: not a class name, or asked together with connected components.
    """
    if instances is not None:
        instances = checked_class_name(instances, "--instances")
    else:
        root = Path(data).expanduser()
        instances = instances_from_json(root) if root.is_dir() else None
    if instances is not None and connected_components:
        raise ConfigurationError(
            f"an instance map's values are its objects already ({instances}): leave out --connected-components"
        )
    return instances


def checked_class_name(value: Any, where: str) -> str:
    """``value`` as the name of the class that instance label maps number.

    Raises:
        ConfigurationError: not a non-empty name of at most 100 characters.
    """
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 100:
        raise ConfigurationError(
            f'{where} must name the one class the label values number (e.g. "nucleus"), got {value!r}'
        )
    return value.strip()


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def parse_label_names(labels: Any, source: Path) -> tuple[dict[int, str], list[str]]:
    """Read a ``labels`` mapping written either way round.

    Accepts value -> name (MSD: ``{"0": "background", "1": "liver"}``) and name -> value
    (nnU-Net v2: ``{"background": 0, "liver": 1}``); which one is detected from the keys: all keys
    integers -> value -> name, else all values integers -> name -> value. nnU-Net region entries
    (a list of values, ``{"tumor": [1, 2]}``) are not single labels and are skipped with a note.

    Args:
        labels: the ``labels`` entry of a ``dataset.json`` (None -> no names).
        source: the ``dataset.json`` path, for error messages.

    Returns:
        ``(label value -> name for values > 0, notes)``.

    Raises:
        DatasetLayoutError: neither direction fits, or a value is negative.
    """
    if labels is None:
        return {}, []
    if not isinstance(labels, dict):
        raise DatasetLayoutError(source, f'"labels" must be an object, found {type(labels).__name__}')
    names: dict[int, str] = {}
    notes: list[str] = []
    if labels and all(_as_int(key) is not None for key in labels):
        pairs = [(_as_int(key), str(name)) for key, name in labels.items()]
    else:
        pairs = []
        for name, value in labels.items():
            if isinstance(value, (list, tuple)):
                notes.append(f"label region {name!r} = {list(value)} is not a single label value; ignored")
                continue
            number = _as_int(value)
            if number is None:
                raise DatasetLayoutError(
                    source,
                    '"labels" must map label values to names ({"1": "liver"}) or names to values '
                    f'({{"liver": 1}}); cannot read entry {name!r}: {value!r}',
                )
            pairs.append((number, str(name)))
    for value, name in pairs:
        assert value is not None
        if value < 0:
            raise DatasetLayoutError(source, f'"labels" has a negative label value {value} ({name!r})')
        if value > 0:
            names[value] = name
    return dict(sorted(names.items())), notes


def modality_from_json(content: dict[str, Any], key: str) -> str | None:
    """``content[key]`` as a modality: a string, or the first channel of a ``{"0": "MRI"}`` mapping;
    None when the key is absent, empty or names no modality samia knows (nnU-Net's normalisation
    schemes such as ``"noNorm"``), so that the files' own modality applies."""
    value = content.get(key)
    if value is None:
        return None
    if isinstance(value, dict):
        if not value:
            return None
        first = "0" if "0" in value else sorted(value, key=lambda k: (_as_int(k) is None, _as_int(k) or 0, k))[0]
        value = value[first]
    modality = normalize_modality(str(value))
    said_nothing = modality == "other" and str(value).strip().lower() != "other"  # e.g. nnU-Net's "noNorm"
    return None if said_nothing else modality


def dataset_name(content: dict[str, Any] | None, root: Path) -> str:
    if content and isinstance(content.get("name"), str) and content["name"].strip():
        return content["name"].strip()
    return root.name


# ----------------------------------------------------------------------------------------------
# file listing and pairing


def _listing(folder: Path, ending: str | None = None) -> list[Path]:
    """Supported, non-hidden entries of ``folder`` (files with a supported ending and sub-folders).

    With ``ending`` (nnU-Net's ``file_ending``) only files whose name ends with it are listed.
    """
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and is_supported(p)]
    if ending:
        entries = [p for p in entries if p.name.lower().endswith(ending.lower())]
    return sorted(entries)


def _by_stem(paths: list[Path], problems: list[SamiaError], ambiguous: set[str]) -> dict[str, Path]:
    """Stem -> path; two entries with one stem are a problem (the stem is then left out and added
    to ``ambiguous``, so its partner on the other side is not also reported as unpaired)."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        stem = path.name if path.is_dir() else image_stem(path)
        groups.setdefault(stem, []).append(path)
    unique: dict[str, Path] = {}
    for stem, group in groups.items():
        if len(group) == 1:
            unique[stem] = group[0]
        else:
            ambiguous.add(stem)
            problems.append(
                DatasetLayoutError(
                    group[0].parent,
                    f"{len(group)} files share the stem {stem!r} ({', '.join(p.name for p in group)}); "
                    "keep one so the pairing is unambiguous",
                )
            )
    return unique


_EXT_HINT = "<ext> one of " + ", ".join(SUPPORTED_SUFFIXES)


def _pair_by_stem(
    images_dir: Path, labels_dir: Path, image_suffix: str = "", ending: str | None = None
) -> tuple[list[tuple[str, Path, Path]], list[SamiaError]]:
    """Pair the entries of two folders by stem; the case id is the label's stem.

    ``image_suffix`` is the part of an image stem after the case id (nnU-Net's ``_0000``); an image
    whose stem does not end with it is not an image of this layout. ``ending``: see :func:`_listing`.
    """
    problems: list[SamiaError] = []
    ambiguous: set[str] = set()
    images = _by_stem(_listing(images_dir, ending), problems, ambiguous) if images_dir.is_dir() else {}
    labels = _by_stem(_listing(labels_dir, ending), problems, ambiguous) if labels_dir.is_dir() else {}
    cut = len(image_suffix)
    image_cases = {s[: len(s) - cut]: p for s, p in images.items() if s.endswith(image_suffix) and len(s) > cut}
    skip = ambiguous | {s[: len(s) - cut] for s in ambiguous if s.endswith(image_suffix)}
    pairs = []
    for case, image in image_cases.items():
        if case in labels:
            pairs.append((case, image, labels[case]))
        elif case not in skip:
            problems.append(
                MissingMaskError(image, f"no mask found; expected {labels_dir / case}.<ext>, {_EXT_HINT}", case)
            )
    for case, label in labels.items():
        if case not in image_cases and case not in skip:
            expected = images_dir / f"{case}{image_suffix}"
            problems.append(MissingFileError(label, f"mask has no image; expected {expected}.<ext>"))
    return sorted(pairs), sorted(problems, key=lambda e: str(getattr(e, "path", e)))


# ----------------------------------------------------------------------------------------------
# the adapters


def scan_folder(root: Path) -> LayoutScan:
    """``ROOT/images`` + ``ROOT/masks`` paired by stem; optional ``ROOT/dataset.json``.

    The ``dataset.json`` may give ``name``, ``modality`` (a string or an MSD-style
    ``{"0": "MRI"}`` mapping) and ``labels`` (either direction, see :func:`parse_label_names`).
    """
    images_dir, masks_dir = root / "images", root / "masks"
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise DatasetLayoutError(root, f"folder layout needs images/ and masks/; {folder} is missing")
    pairs, problems = _pair_by_stem(images_dir, masks_dir)
    return _scan_with_optional_json(root, "folder", pairs, problems)


def _scan_with_optional_json(
    root: Path, layout: str, pairs: list[tuple[str, Path, Path]], problems: list[SamiaError]
) -> LayoutScan:
    """The scan of a layout whose ``dataset.json`` is optional (``name``, ``modality``, ``labels``)."""
    content = read_dataset_json(root) or {}
    label_names, notes = parse_label_names(content.get("labels"), root / DATASET_JSON)
    return LayoutScan(
        root=root,
        layout=layout,
        dataset=dataset_name(content, root),
        modality=modality_from_json(content, "modality"),
        label_names=label_names,
        pairs=pairs,
        problems=problems,
        notes=notes,
    )


def _resolve_entry(root: Path, entry: Any, key: str, index: int) -> Path:
    source = root / DATASET_JSON
    if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
        raise DatasetLayoutError(
            source, f'"training"[{index}] must be an object with string "image" and "label"; found {entry!r}'
        )
    return (root / entry[key]).resolve()


def scan_msd(root: Path) -> LayoutScan:
    """Medical Segmentation Decathlon layout (``dataset.json`` + ``imagesTr/`` + ``labelsTr/``).

    The ``training`` list is used when present (case id = stem of the label file); otherwise
    ``imagesTr/`` and ``labelsTr/`` are paired by stem. ``modality`` channel ``"0"`` names the
    modality (``"MRI"`` -> ``"MR"``).
    """
    content = read_dataset_json(root)
    if content is None:
        raise DatasetLayoutError(root, f"MSD layout needs {root / DATASET_JSON}")
    label_names, notes = parse_label_names(content.get("labels"), root / DATASET_JSON)
    training = content.get("training")
    problems: list[SamiaError] = []
    pairs: list[tuple[str, Path, Path]] = []
    if training:
        listing = root / DATASET_JSON
        if not isinstance(training, list):
            raise DatasetLayoutError(listing, f'"training" must be a list, found {type(training).__name__}')
        seen: dict[str, Path] = {}
        for index, entry in enumerate(training):
            image = _resolve_entry(root, entry, "image", index)
            label = _resolve_entry(root, entry, "label", index)
            case = image_stem(label)
            where = f'{listing} "training"[{index}]'
            if not image.exists():
                problems.append(MissingFileError(image, f"listed in {where} but does not exist"))
            elif not label.exists():
                problems.append(MissingMaskError(image, f"no mask found; expected {label} (listed in {where})", case))
            elif case in seen:
                problems.append(
                    DatasetLayoutError(listing, f"case id {case!r} appears twice ({seen[case]} and {label}, {where})")
                )
            else:
                seen[case] = label
                pairs.append((case, image, label))
        pairs.sort()
        problems.sort(key=lambda e: str(getattr(e, "path", e)))
    else:
        if not (root / "imagesTr").is_dir():
            raise DatasetLayoutError(root, 'MSD layout needs imagesTr/ (or a "training" list in dataset.json)')
        pairs, problems = _pair_by_stem(root / "imagesTr", root / "labelsTr")
    return LayoutScan(
        root=root,
        layout="msd",
        dataset=dataset_name(content, root),
        modality=modality_from_json(content, "modality"),
        label_names=label_names,
        pairs=pairs,
        problems=problems,
        notes=notes,
    )


def scan_nnunet(root: Path) -> LayoutScan:
    """nnU-Net v2 raw layout: ``imagesTr/<case>_0000<ending>`` + ``labelsTr/<case><ending>``.

    Only channel ``0000`` is used; when ``channel_names`` lists more channels, a note says they
    are ignored. ``file_ending`` restricts which files are considered (default: any supported).
    """
    content = read_dataset_json(root)
    if content is None:
        raise DatasetLayoutError(root, f"nnU-Net layout needs {root / DATASET_JSON}")
    label_names, notes = parse_label_names(content.get("labels"), root / DATASET_JSON)
    channel_key = "channel_names" if "channel_names" in content else "modality"  # nnU-Net v1 said "modality"
    channels = content.get(channel_key) or {}
    if isinstance(channels, dict) and len(channels) > 1:
        notes.append(
            f"{len(channels)} channels listed ({', '.join(f'{k}: {v}' for k, v in channels.items())}); "
            f"only channel {NNUNET_CHANNEL} ({channels.get('0', '?')}) is used"
        )
    ending = content.get("file_ending")
    if not (root / "imagesTr").is_dir():
        raise DatasetLayoutError(root, "nnU-Net layout needs imagesTr/<case>_0000<file_ending>")
    pairs, problems = _pair_by_stem(
        root / "imagesTr",
        root / "labelsTr",
        image_suffix="_" + NNUNET_CHANNEL,
        ending=ending if isinstance(ending, str) and ending else None,
    )
    return LayoutScan(
        root=root,
        layout="nnunet",
        dataset=dataset_name(content, root),
        modality=modality_from_json(content, channel_key),
        label_names=label_names,
        pairs=pairs,
        problems=problems,
        notes=notes,
    )


def scan_cvpr24(root: Path) -> LayoutScan:
    """The CVPR 2024 challenge's ``.npz`` files (:mod:`samia.io.npz`): ``ROOT/*.npz`` each holding
    ``imgs`` and ``gts`` (its training files), or ``ROOT/imgs/*.npz`` with the ground truth in
    ``ROOT/gts/`` under the same names (its validation layout). The case id is the file stem."""
    images_dir = root / "imgs" if (root / "imgs").is_dir() else root
    files = sorted(p for p in images_dir.glob("*.npz") if not p.name.startswith("."))
    if not files:
        raise DatasetLayoutError(root, "cvpr24 layout needs .npz files in the folder or in imgs/; found none")
    problems: list[SamiaError] = []
    pairs = []
    for path in files:
        label = root / "gts" / path.name if images_dir != root else path
        if not label.is_file():
            problems.append(MissingMaskError(path, f"no ground truth found; expected {label}", image_stem(path)))
            continue
        pairs.append((image_stem(path), path, label))
    return _scan_with_optional_json(root, "cvpr24", pairs, problems)


LAYOUTS: dict[str, Callable[[Path], LayoutScan]] = {
    "folder": scan_folder,
    "msd": scan_msd,
    "nnunet": scan_nnunet,
    "cvpr24": scan_cvpr24,
}
"""Layout name -> adapter. ``"auto"`` (see :func:`detect_layout`) picks one of these."""


def detect_layout(root: str | Path) -> str:
    """Which layout ``root`` follows.

    Rules, in order: ``dataset.json`` with ``channel_names`` -> ``"nnunet"``; ``imagesTr/`` with a
    ``dataset.json`` -> ``"msd"``; ``images/`` and ``masks/`` -> ``"folder"``; ``.npz`` files in the
    folder or in ``imgs/`` -> ``"cvpr24"``.

    Raises:
        DatasetLayoutError: ``root`` is not a folder, or none of the rules fits (the message lists
            what each layout expects and what was found).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(root, "is not a folder" if root.exists() else "dataset folder does not exist")
    content = read_dataset_json(root)
    if content is not None and "channel_names" in content:
        return "nnunet"
    if content is not None and (root / "imagesTr").is_dir():
        return "msd"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    if any(root.glob("*.npz")) or any((root / "imgs").glob("*.npz")):
        return "cvpr24"
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    shown = ", ".join(found[:12]) + (", ..." if len(found) > 12 else "")
    raise DatasetLayoutError(
        root,
        "does not follow a known dataset layout; expected one of: "
        "folder (images/ + masks/ [+ dataset.json]), "
        "msd (dataset.json + imagesTr/ + labelsTr/), "
        'nnunet (dataset.json with "channel_names" + imagesTr/<case>_0000<ending> + labelsTr/), '
        "cvpr24 (*.npz with imgs and gts, or imgs/*.npz + gts/*.npz); "
        f"found: {shown or 'nothing'}",
    )
