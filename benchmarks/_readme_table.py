"""Regenerate the README's speed table from the rows the benchmarks recorded.

Run after the benchmarks (``make benchmarks`` does): it reads ``benchmarks/results/*.json`` in
:data:`ORDER` and replaces the lines between the README's ``speed-table`` markers. ``--check``
exits 1 if the README differs from what the results give (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _results import RESULTS

README = Path(__file__).parents[1] / "README.md"
START, END = "<!-- speed-table:start -->", "<!-- speed-table:end -->"
ORDER = (
    "backends",
    "decoder_batch",
    "cold_start",
    "volume_wall",
    "volume_speed",
    "volume_correction",
    "everything_vs_sam",
    "serve_latency",
    "propagation",
)


def render(entries: list[dict]) -> str:
    """The Markdown between the markers: which CPU(s), then one table row per recorded row. Where the
    entries were measured on different CPUs, each row names its own."""
    machines = sorted({_machine(entry) for entry in entries})
    one_cpu = len(machines) == 1
    lines = [f"Measured on {machines[0]}:" if one_cpu else "Measured on the CPU each row names:", ""]
    lines += ["| task | time | against the floor |", "|---|---|---|"]
    for entry in entries:
        for row in entry["rows"]:
            where = "" if one_cpu else f" ({_machine(entry)})"
            lines.append(f"| {row['task']}{where} | {row['time']} | {row['against']} |")
    return "\n".join(lines)


def _machine(entry: dict) -> str:
    isa = f", {entry['isa']}" if entry.get("isa") else ""
    bf16 = " with bf16" if entry["bf16"] else ""
    return f"{entry['cpu']} ({entry['threads']} threads{isa}{bf16}), {entry['date']}"


def load(folder: Path = RESULTS) -> list[dict]:
    """The recorded entries in :data:`ORDER` (benchmarks not yet run are left out)."""
    paths = [folder / f"{name}.json" for name in ORDER]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def replaced(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    head, found, rest = readme.partition(START)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{README}: the {START} ... {END} markers are missing")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date")
    check = parser.parse_args().check
    current = README.read_text()
    wanted = replaced(current, render(load()))
    if check:
        if wanted != current:
            print(f"{README}: the speed table differs from benchmarks/results; run benchmarks/_readme_table.py")
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
