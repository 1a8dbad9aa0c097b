"""The annotation log: one JSON line per interaction, appended and flushed to disk as it happens.

Each line: ``time`` (seconds since the epoch), ``case``, ``slice`` (None for a 2D image),
``object`` (its label value), ``kind`` (an edit kind, ``undo``, ``redo``, ``accept``, ``open``,
``external_change``), ``coords``, ``latency_ms`` (the model's answer, for clicks and boxes) and
free ``details``. A run killed while writing leaves at most one torn last line, which
:func:`read_log` skips.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

LOG_NAME = "log.jsonl"


def append_event(folder: Path, **event: Any) -> dict[str, Any]:
    """Append ``event`` (with the current ``time``) to ``folder/log.jsonl``, flushed and fsynced."""
    record = {"time": time.time(), **event}
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with (folder / LOG_NAME).open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return record


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
