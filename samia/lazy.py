"""Package exports imported on first use (PEP 562), so importing a package stays cheap."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` when ``name`` is
    first asked for, and raises AttributeError for any other name. A target is a module path (the
    attribute has the same name there) or ``module:attribute``."""

    def attribute(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, inner = exports[name].partition(":")
        return getattr(import_module(module), inner or name)

    return attribute
