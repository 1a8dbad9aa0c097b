"""The one way a benchmark reports (its ratio next to its target, and the exit status), and the one
way a memory benchmark measures (a fresh process's peak RSS).

Every script ends with ``sys.exit(report(ratio, "<=", 10.0))``: it prints ``ratio=... target<=...
PASS|MISS`` as its last line and exits 1 on a missed target, so ``make benchmarks`` can list them.
"""

from __future__ import annotations

import operator
import subprocess
import sys

_COMPARE = {"<=": operator.le, ">=": operator.ge}


def report(ratio: float, comparison: str, target: float) -> int:
    """Print the verdict line; return the exit status (0 met, 1 missed)."""
    met = _COMPARE[comparison](ratio, target)
    print(f"ratio={ratio:.3f} target{comparison}{target:g} {'PASS' if met else 'MISS'}")
    return 0 if met else 1


def report_each(checks: list[tuple[str, float, str, float]]) -> int:
    """Print one verdict line per ``(what, ratio, comparison, target)``, named; return 1 if any missed."""
    missed = 0
    for what, ratio, comparison, target in checks:
        print(f"{what}: ", end="")
        missed |= report(ratio, comparison, target)
    return missed


def child_peak_rss_kib(script: str, *args: object) -> int:
    """Run ``python -c script args...`` in a fresh process; the last line it prints is its peak RSS
    in KiB (``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` would keep this process's own
    high-water mark across the child's exec), which is returned."""
    completed = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], check=True, capture_output=True, text=True
    )
    return int(completed.stdout.strip().splitlines()[-1])
