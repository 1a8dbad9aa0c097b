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
import time
from pathlib import Path
from typing import Any

LOG_NAME = "log.jsonl"

STUDY_FILE = "annotation.json"
"""Written into an annotation folder by the server: the data folder, the model and the mode, so
that ``samia report`` finds the ground truth."""


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


def write_study_file(folder: Path, data: Path, model: str | None, mode: str) -> Path:
    """Write ``folder/annotation.json``: which data folder (its ground truth), model and mode."""
    path = folder / STUDY_FILE
    path.write_text(json.dumps({"data": str(Path(data).resolve()), "model": model, "mode": mode}, indent=1))
    return path


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
