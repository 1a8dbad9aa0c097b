"""SNOMED CT segment codes (samia.io.segment_codes) against the values PS3.16 prints for them."""

import pytest

from samia.errors import ConfigurationError
from samia.io.segment_codes import DEFAULT_SEGMENT_CODE, find_segment_codes, segment_code


@pytest.mark.parametrize(
    ("text", "category", "kind"),
    [
        ("Liver", "91723000", "10200004"),
        ("LIVER", "91723000", "10200004"),
        ("10200004", "91723000", "10200004"),
        ("Neoplasm", "49755003", "108369006"),
        ("Artery", "85756007", "51114001"),  # listed under Tissue and Anatomical Structure: the first
        ("AnatomicalStructure/Artery", "91723000", "51114001"),
    ],
)
def test_a_keyword_or_concept_id_gives_the_standards_type_and_category(text, category, kind) -> None:
    code = segment_code(text)
    assert (code.category.value, code.type.value) == (category, kind)
    assert code.category.scheme_designator == code.type.scheme_designator == "SCT"


def test_an_uncoded_segment_is_tissue() -> None:
    assert (DEFAULT_SEGMENT_CODE.category.value, DEFAULT_SEGMENT_CODE.type.value) == ("85756007", "85756007")


def test_a_search_finds_by_keyword_meaning_or_id() -> None:
    kidney = dict(find_segment_codes("kidney"))
    assert kidney["Kidney"].type.value == "64033007"
    assert all("kidney" in (k + c.type.meaning).lower() for k, c in kidney.items())
    assert [k for k, _ in find_segment_codes("10200004")] == ["Liver"]
    assert len(find_segment_codes()) == 907


def test_a_misspelt_code_is_refused_with_the_near_ones() -> None:
    with pytest.raises(ConfigurationError, match="did you mean Kidney"):
        segment_code("Kidny")
