"""The input warnings of a case, recorded for ``warnings.csv`` instead of lost on a terminal."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from samia.errors import InputWarning
from samia.files import printable


class CaseWarnings:
    """The input warnings of one case, each distinct (file, message) once with a count."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    @contextmanager
    def capture(self, slice_index: int) -> Iterator[None]:
        """Record the :class:`InputWarning` issued inside the block; other warnings are shown as usual."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputWarning)
            yield
        for warning in caught:
            if not isinstance(warning.message, InputWarning):
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
                continue
            found = warning.message
            key = (found.path, found.problem)
            if key in self.records:
                self.records[key]["count"] += 1
            else:
                self.records[key] = {
                    "case": printable(self.case),
                    "slice": slice_index,
                    "path": printable(found.path),
                    "warning": type(found).__name__,
                    "message": printable(" ".join(found.problem.split())),
                    "count": 1,
                }
