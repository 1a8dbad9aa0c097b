"""SNOMED CT codes of DICOM-SEG segments: what each segment *is* (its segmented property type) and
the category that type belongs to, from the DICOM standard's own lists (PS3.16, as pydicom ships them).

- CID 7151 (*Segmentation Property Types*): the 907 types a segment may be, e.g. ``Liver``
  (SCT 10200004) or ``Neoplasm`` (SCT 108369006).
- CIDs 7191-7198: the types of each category of CID 7150 (*Tissue*, *Anatomical Structure*,
  *Physical Object*, *Morphologically Abnormal Structure*, ...), which is how a type's category is
  found. A type listed under two categories (``Artery``: tissue and anatomical structure) takes the
  first, unless the user names the category (``AnatomicalStructure/Artery``).

A segment nobody coded is ``Tissue / Tissue``, the code viewers such as 3D Slicer also give an
uncoded segment.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from samia.errors import ConfigurationError

CATEGORY_TYPES = {
    "Tissue": 7191,
    "AnatomicalStructure": 7192,
    "PhysicalObject": 7193,
    "MorphologicallyAbnormalStructure": 7194,
    "Function": 7195,
    "SpatialAndRelationalConcept": 7196,
    "BodySubstance": 7197,
    "Substance": 7198,
}
"""Each category of CID 7150 (by pydicom keyword) and the CID that lists its segmentation types."""


@dataclass(frozen=True)
class SegmentCode:
    """The coded meaning of one DICOM-SEG segment.

    Attributes:
        category: the segmented property category (a CID 7150 code).
        type: the segmented property type (a CID 7151 code).
    """

    category: Code
    type: Code

    def describe(self) -> str:
        """``"Liver (SCT 10200004; category Anatomical Structure)"``: for listings and messages."""
        return f"{self.type.meaning} (SCT {self.type.value}; category {self.category.meaning})"


DEFAULT_SEGMENT_CODE = SegmentCode(codes.cid7150.Tissue, codes.cid7151.Tissue)
"""The code of a segment the user did not code."""


def segment_code(text: str) -> SegmentCode:
    """The segment code a user named: a CID 7151 keyword (``Liver``, any case) or SNOMED CT concept
    id (``10200004``), optionally after its category's keyword and a slash
    (``AnatomicalStructure/Artery``).

    Raises:
        ConfigurationError: the text names no segmentation property type (or not one of that category).
    """
    category_name, _, type_name = text.strip().rpartition("/")
    wanted = type_name.strip().lower()
    found = [keyword for keyword, code in _types().items() if wanted in (keyword.lower(), code.value)]
    if not found:
        by_lower = {keyword.lower(): keyword for keyword in _types()}
        near = [by_lower[k] for k in difflib.get_close_matches(wanted, by_lower, n=3, cutoff=0.75)]
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise ConfigurationError(
            f"--segment-code {text}: not a segmentation property type of DICOM CID 7151 "
            f"({hint}`samia segment-codes WORD` searches them)"
        )
    categories = _categories()[found[0]]
    if category_name:
        named = [name for name in CATEGORY_TYPES if name.lower() == category_name.strip().lower()]
        if not named or named[0] not in categories:
            raise ConfigurationError(
                f"--segment-code {text}: {found[0]} is a type of {' and '.join(categories)}, not {category_name}"
            )
        categories = named
    return SegmentCode(getattr(codes.cid7150, categories[0]), _types()[found[0]])


def find_segment_codes(query: str = "") -> list[tuple[str, SegmentCode]]:
    """Every ``(keyword, code)`` of CID 7151 whose keyword, meaning or concept id holds ``query``
    (any case; all of them for ``""``), sorted by keyword."""
    wanted = query.strip().lower()
    return [
        (keyword, SegmentCode(getattr(codes.cid7150, _categories()[keyword][0]), code))
        for keyword, code in sorted(_types().items())
        if wanted in keyword.lower() or wanted in code.meaning.lower() or wanted == code.value
    ]


@cache
def _types() -> dict[str, Code]:
    """CID 7151 by keyword."""
    return {keyword: getattr(codes.cid7151, keyword) for keyword in codes.cid7151.dir()}


@cache
def _categories() -> dict[str, list[str]]:
    """The categories (keywords of :data:`CATEGORY_TYPES`, in its order) of each CID 7151 keyword."""
    listed = {name: set(getattr(codes, f"cid{cid}").dir()) for name, cid in CATEGORY_TYPES.items()}
    return {keyword: [name for name, types in listed.items() if keyword in types] for keyword in _types()}
