"""Peak memory of ``samia evaluate`` on 10x more images relative to a small set (LiteMedSAM).

Each run is a fresh process over a synthetic phantom dataset (seeded); peak RSS is read from the
child's ``VmHWM``. Results are streamed to the journal, so memory should not grow with the
number of cases. Prints ``ratio=<peak RSS, 10N cases> / <peak RSS, N cases>``; target <= 1.2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _target import child_peak_rss_kib, report

from samia.data import write_phantom_dataset

SMALL = 4
SCRIPT = """
import sys
from samia.evaluation import EvaluationConfig, evaluate
evaluate(EvaluationConfig.from_dict(dict(data=sys.argv[1], out=sys.argv[2], model="litemedsam", strategies=["box", "point1"])))
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as root:
        root_path = Path(root)
        small = write_phantom_dataset(root_path / "small", SMALL, np.random.default_rng(0), shape=(256, 256))
        large = write_phantom_dataset(root_path / "large", 10 * SMALL, np.random.default_rng(0), shape=(256, 256))
        small_kib = child_peak_rss_kib(SCRIPT, small, root_path / "out_small")
        large_kib = child_peak_rss_kib(SCRIPT, large, root_path / "out_large")
    print(f"peak RSS, {SMALL} cases: {small_kib / 1024:.1f} MiB")
    print(f"peak RSS, {10 * SMALL} cases: {large_kib / 1024:.1f} MiB")
    return report(large_kib / small_kib, "<=", 1.2)


if __name__ == "__main__":
    sys.exit(main())
