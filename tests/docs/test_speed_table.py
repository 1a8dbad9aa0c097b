"""The README's speed table is what the benchmarks last recorded, rendered, never typed by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def table_module(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _readme_table

    return _readme_table


def _entry(benchmark: str, cpu: str, task: str) -> dict:
    row = {"task": task, "time": "1.00 s", "against": "1.10x"}
    return {"benchmark": benchmark, "cpu": cpu, "threads": 2, "bf16": False, "date": "2026-12-06", "rows": [row]}


def test_the_readme_table_matches_the_recorded_results() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "_readme_table.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rows_follow_the_benchmark_order_and_name_their_cpu_when_cpus_differ(table_module, tmp_path: Path) -> None:
    for entry in (_entry("cold_start", "CPU B", "start"), _entry("backends", "CPU A", "encode")):
        (tmp_path / f"{entry['benchmark']}.json").write_text(json.dumps(entry))
    table = table_module.render(table_module.load(tmp_path))
    assert table.index("| encode (CPU A") < table.index("| start (CPU B")
    same = table_module.render([_entry("backends", "CPU A", "encode")])
    assert same.startswith("Measured on CPU A (2 threads), 2026-12-06:") and "| encode | 1.00 s | 1.10x |" in same


def test_replacing_keeps_the_text_around_the_markers(table_module) -> None:
    readme = f"before\n{table_module.START}\nold\n{table_module.END}\nafter\n"
    assert table_module.replaced(readme, "new") == f"before\n{table_module.START}\nnew\n{table_module.END}\nafter\n"
    with pytest.raises(SystemExit, match="markers are missing"):
        table_module.replaced("no markers", "new")
