"""Where a benchmark leaves the rows it contributes to the README's speed table.

``record("cold_start", [Row(...)])`` writes ``benchmarks/results/cold_start.json`` with the CPU it
ran on and the day; ``_readme_table.py`` renders every recorded row into the README, so the table
is always what the scripts last printed on a named CPU, never typed by hand.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from _floor import cpu_name

from samia.models.exported import cpu_has_bf16

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Row:
    """One line of the README's speed table: the task, its measured time (with units) and the time
    against this machine's floor (``"1.03x"``) or a comparison, ``""`` where there is none."""

    task: str
    time: str
    against: str = ""


def vector_isa() -> str:
    """The widest vector instructions the CPU has (``AVX-512``, ``AVX2``, ``AVX`` or ``""``), from
    ``/proc/cpuinfo``'s flags."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return next(
        (name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags), ""
    )


def record(benchmark: str, rows: list[Row]) -> Path:
    """Write ``rows`` as ``benchmark``'s entry in :data:`RESULTS`, with the CPU, its thread count,
    vector instructions and bf16 support, and today's date; return the file written."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    entry = {
        "benchmark": benchmark,
        "cpu": cpu_name(),
        "threads": os.cpu_count(),
        "isa": vector_isa(),
        "bf16": cpu_has_bf16(),
        "date": datetime.date.today().isoformat(),
        "rows": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(entry, indent=1) + "\n")
    return path
