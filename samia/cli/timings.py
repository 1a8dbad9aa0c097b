"""``--timings``: where one command's wall time went, stage by stage, printed on stderr.

The first stage, ``start``, is the time from the process's start (Linux: ``/proc/self/stat``) to
the command's first line: Python itself and the imports. The model's ``encode`` and ``decode``
stages come from the predictor's own counters (:attr:`samia.predictor.SamiaPredictor.encode_seconds`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def process_age_seconds() -> float | None:
    """Seconds since this process started (Linux), else None."""
    try:
        started_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(uptime - started_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


class StageClock:
    """Wall seconds per named stage, in the order first timed, from the process's start."""

    def __init__(self) -> None:
        self._began = time.perf_counter()
        self.seconds: dict[str, float] = {}
        age = process_age_seconds()
        if age is not None:
            self.seconds["start"] = age

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to stage ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def split(self, name: str, parts: dict[str, float]) -> None:
        """Replace stage ``name`` by ``parts`` (seconds each) and what is left of it (``name`` itself)."""
        whole = self.seconds.pop(name, 0.0)
        for part, seconds in parts.items():
            self.add(part, seconds)
        self.add(name, max(whole - sum(parts.values()), 0.0))

    def line(self) -> str:
        """``timings: start 0.41 s, read 0.02 s, ..., other 0.05 s, total 1.20 s``: the stages, what
        no stage holds (``other``: imports and checks between them), and the total from the
        process's start, which they add up to."""
        total = self.seconds.get("start", 0.0) + time.perf_counter() - self._began
        other = max(total - sum(self.seconds.values()), 0.0)
        stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in {**self.seconds, "other": other}.items())
        return f"timings: {stages}, total {total:.2f} s"
