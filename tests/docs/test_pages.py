"""The README is short and true, its links resolve, and the reference pages cover what the code has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def _anchors(page: Path) -> set[str]:
    """The heading anchors MkDocs makes for ``page`` (lower case, punctuation dropped, spaces to -)."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target, anchor in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        linked = (page.parent / target).resolve()
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}#{anchor}")
    return broken


def test_readme_is_short_with_the_two_commands_and_the_guides_up_front() -> None:
    text = README.read_text()
    assert len(text.encode()) < 12 * 1024
    assert "make demo" in text and "make test" in text
    first_lines = "\n".join(text.splitlines()[:40])
    guides = {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs" / "guides").glob("*.md")}
    linked = {target for target, _ in LINK.findall(first_lines)}
    assert guides <= linked, f"guides not linked in the README's first 40 lines: {sorted(guides - linked)}"


def test_links_of_the_readme_and_every_page_resolve() -> None:
    pages = [README, *sorted((ROOT / "docs").rglob("*.md"))]
    broken = {page.relative_to(ROOT).as_posix(): _broken_links(page) for page in pages}
    assert not {page: links for page, links in broken.items() if links}


def test_the_results_page_names_every_result_column() -> None:
    from samia.evaluation.schema import RESULT_COLUMNS

    page = (ROOT / "docs" / "reference" / "results.md").read_text()
    assert [column for column in RESULT_COLUMNS if f"`{column}`" not in page] == []


def test_the_site_loads_no_remote_font_and_every_page_is_in_the_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^\s*font: false", config, re.M)
    for page in (ROOT / "docs").rglob("*.md"):
        assert page.relative_to(ROOT / "docs").as_posix() in config, f"{page} is not in mkdocs.yml's nav"
