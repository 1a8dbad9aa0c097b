"""The annotation log: one JSON line per interaction, appended and flushed to disk as it happens.

Each line: ``time`` (seconds since the epoch), ``case``, ``slice`` (None for a 2D image),
``object`` (its label value), ``mode`` (``assisted`` with a model, ``manual`` without), ``kind``
(an edit kind, ``undo``, ``redo``, ``accept``, ``propagate``, ``new_object``, ``go_to``,
``preset``, ``open``, ``external_change``, ``error``), ``coords``, ``latency_ms`` (the model's
answer, for clicks and boxes) and free ``details``. A run killed while writing leaves at most one torn last line, which
:func:`read_log` skips.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from samia.errors import ConfigurationError

LOG_NAME = "log.jsonl"

STUDY_FILE = "annotation.json"
"""Written into an annotation folder by the server: the data folder, the model, the mode and the
rater, so that ``samia report`` finds the ground truth and tells raters apart."""

RATER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A rater's name: a plain name (letters, digits, ``.``, ``_``, ``-``), at most 64 characters."""


def append_event(folder: Path, when: float | None = None, **event: Any) -> dict[str, Any]:
    """Append ``event`` with its ``time`` (``when``, seconds since the epoch; now when None) to
    ``folder/log.jsonl``, flushed and fsynced."""
    record = {"time": time.time() if when is None else float(when), **event}
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with (folder / LOG_NAME).open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return record


def write_study_file(folder: Path, data: Path, model: str | None, mode: str, rater: str | None = None) -> Path:
    """Write ``folder/annotation.json``: which data folder (its ground truth), model, mode and rater
    (None: not named).

    Raises:
        ConfigurationError: ``rater`` is not a plain name, or ``folder`` already holds annotations
            (a log) of another rater: one folder holds one rater's masks.
    """
    if rater is not None and not RATER_NAME.fullmatch(rater):
        raise ConfigurationError(f"rater {rater!r} is not a plain name (letters, digits, . _ -, at most 64)")
    held = study_rater(folder)
    if (folder / LOG_NAME).is_file() and held != rater:
        raise ConfigurationError(
            f"{folder} holds the annotations of {_who(held)}, not of {_who(rater)}: "
            "each rater annotates into their own --out folder"
        )
    path = folder / STUDY_FILE
    study = {"data": str(Path(data).resolve()), "model": model, "mode": mode, "rater": rater}
    path.write_text(json.dumps(study, indent=1))
    return path


def study_rater(folder: Path) -> str | None:
    """The rater named in ``folder/annotation.json``; None without one (or without a readable file)."""
    try:
        rater = json.loads((Path(folder) / STUDY_FILE).read_text()).get("rater")
    except (OSError, ValueError, AttributeError):
        return None
    return rater if isinstance(rater, str) else None


def _who(rater: str | None) -> str:
    return "an unnamed rater" if rater is None else f"rater {rater!r}"


def read_log(folder: Path) -> list[dict[str, Any]]:
    """Every complete event of ``folder/log.jsonl`` in order (a torn or garbled line is skipped)."""
    path = folder / LOG_NAME
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
