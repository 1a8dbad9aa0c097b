"""The one way a benchmark reports: its measured ratio next to its target, and the exit status.

Every script ends with ``sys.exit(report(ratio, "<=", 10.0))``: it prints ``ratio=... target<=...
PASS|MISS`` as its last line and exits 1 on a missed target, so ``make benchmarks`` can list them.
"""

from __future__ import annotations

import operator

_COMPARE = {"<=": operator.le, ">=": operator.ge}


def report(ratio: float, comparison: str, target: float) -> int:
    """Print the verdict line; return the exit status (0 met, 1 missed)."""
    met = _COMPARE[comparison](ratio, target)
    print(f"ratio={ratio:.3f} target{comparison}{target:g} {'PASS' if met else 'MISS'}")
    return 0 if met else 1
