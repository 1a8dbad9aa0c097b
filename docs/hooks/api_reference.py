"""MkDocs hook: the Python API page lists exactly what ``samia.__all__`` exports.

``<!-- samia-api -->`` in a page becomes one mkdocstrings block per public name, taken from samia's
lazy-export table, so a name added to the API is documented without editing the page.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- samia-api -->"


def _object_paths() -> list[tuple[str, str]]:
    """``(public name, dotted path of its definition)`` for every name ``samia.__all__`` exports
    (each name is loaded, so the path is where the object is defined, not where it is re-exported)."""
    import samia

    paths = []
    for name in samia.__all__:
        if name.startswith("__"):
            continue
        target = getattr(samia, name)
        paths.append((name, f"{target.__module__}.{target.__qualname__}"))
    return paths


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    blocks = [
        f"## `samia.{name}`\n\n::: {path}\n    options:\n      heading_level: 3\n      show_root_heading: false\n"
        for name, path in _object_paths()
    ]
    return markdown.replace(MARKER, "\n".join(blocks))
