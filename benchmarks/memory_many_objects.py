"""Peak memory of ``samia evaluate`` on one image with 10x more objects (LiteMedSAM).

A 512 x 512 image holds a grid of N labelled squares (12, then 120); each run, in a fresh process,
evaluates ``box``, ``point1`` and ``box_jitter`` (9 variants) with every selection rule. Prompts are
decoded and scored ``decode_batch`` at a time, so peak RSS should not grow with the objects.
Prints ``ratio=<peak RSS, 120 objects> / <peak RSS, 12 objects>``; target <= 1.2.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _target import child_peak_rss_kib, report
from PIL import Image

from samia.io import write_label_map

SCRIPT = """
import sys
from samia.evaluation import EvaluationConfig, evaluate
evaluate(EvaluationConfig.from_dict(dict(data=sys.argv[1], out=sys.argv[2], model="litemedsam",
                          strategies=["box", "point1", "box_jitter"])))
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def write_grid_dataset(root: Path, n_objects: int, side: int = 512) -> Path:
    """One image with ``n_objects`` bright squares on a noisy background, each its own label."""
    rng = np.random.default_rng(0)
    image = rng.normal(60, 10, (side, side))
    labels = np.zeros((side, side), np.uint16)
    per_row = int(np.ceil(np.sqrt(n_objects)))
    cell = side // per_row
    for index in range(n_objects):
        top, left = (index // per_row) * cell, (index % per_row) * cell
        labels[top + 4 : top + cell - 4, left + 4 : left + cell - 4] = index + 1
    image[labels > 0] += 120
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(root / "images" / "grid.png")
    write_label_map(root / "masks" / "grid.png", labels)
    return root


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        peaks = {}
        for n in (12, 120):
            peaks[n] = child_peak_rss_kib(SCRIPT, write_grid_dataset(root / f"data{n}", n), root / f"run{n}")
            print(f"peak RSS, {n} objects on one 512 x 512 image: {peaks[n] / 1024:.1f} MiB")
    return report(peaks[120] / peaks[12], "<=", 1.2)


if __name__ == "__main__":
    sys.exit(main())
