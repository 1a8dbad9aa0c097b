"""Progress on stderr for long commands: live bars on a terminal, and plain lines at a steady
interval when stderr is a file or a pipe (a log of a batch job gets progress too, not escape codes).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

PLAIN_INTERVAL_VARIABLE = "SAMIA_PROGRESS_SECONDS"
"""Seconds between plain progress lines (default 30; 0: a line at every update)."""


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


class PlainProgress:
    """Counters printed as one line (``cases 3/13; prompts 40/120 (case slice 12); elapsed 1m02s,
    ETA 2m10s``) at most every ``interval_s`` seconds, and always when the first counter finishes.
    The ETA extrapolates the first counter (the whole run) from its elapsed time.

    Args:
        stream: where the lines go (stderr).
        interval_s: seconds between lines; None: :data:`PLAIN_INTERVAL_VARIABLE`, else 30.
    """

    def __init__(self, stream: TextIO, interval_s: float | None = None) -> None:
        self.stream = stream
        self.interval_s = float(os.environ.get(PLAIN_INTERVAL_VARIABLE, 30)) if interval_s is None else interval_s
        self.started = time.monotonic()
        self.printed_at: float | None = None
        self.counters: dict[str, list] = {}

    def set_total(self, name: str, total: int | None, note: str = "") -> None:
        """Start (or restart) counter ``name`` at 0 of ``total`` (None: not known yet)."""
        self.counters[name] = [0, total, note]

    def advance(self, name: str, count: int = 1, note: str | None = None) -> None:
        """Count ``count`` more of ``name`` done, then print a line if one is due."""
        done, total, _ = self.counters.setdefault(name, [0, None, ""])
        self.update(name, done + count, total, note)

    def update(self, name: str, done: int, total: int | None, note: str | None = None) -> None:
        """Set counter ``name`` to ``done`` of ``total``, then print a line if one is due."""
        counter = self.counters.setdefault(name, [0, None, ""])
        counter[0], counter[1] = done, total
        if note is not None:
            counter[2] = note
        self._maybe_print()

    def _maybe_print(self) -> None:
        now = time.monotonic()
        done, total, _ = next(iter(self.counters.values()))
        finished = total is not None and done >= total
        if not finished and self.printed_at is not None and now - self.printed_at < self.interval_s:
            return
        self.printed_at = now
        self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def line(self, now: float) -> str:
        """The progress line at monotonic time ``now``."""
        parts = []
        for name, (done, total, note) in self.counters.items():
            parts.append(f"{name} {done}/{'?' if total is None else total}" + (f" ({note})" if note else ""))
        elapsed = now - self.started
        done, total, _ = next(iter(self.counters.values()))
        timing = f"elapsed {_duration(elapsed)}"
        if total and done:
            timing += f", ETA {_duration(elapsed * (total - done) / done)}"
        return "; ".join(parts) + f"; {timing}"


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (live bars) rather than a file or a pipe (plain lines)."""
    return sys.stderr.isatty()


@contextmanager
def slice_progress(objects: int) -> Iterator[Callable[[int, int], None]]:
    """A ``(slices done, slices planned)`` callback for the volume engine that shows the slices of
    ``objects`` objects going by with an ETA: a bar on a terminal, plain lines otherwise."""
    label = f"slices ({objects} object{'s' if objects > 1 else ''})"
    if not stderr_is_terminal():
        plain = PlainProgress(sys.stderr)
        yield lambda done, planned: plain.update(label, done, planned)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(elapsed_when_finished=True))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bars:
        task = bars.add_task("", total=None)

        def report_bar(done: int, planned: int) -> None:
            bars.update(task, completed=done, total=planned)

        yield report_bar
