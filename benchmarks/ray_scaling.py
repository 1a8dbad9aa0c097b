"""Ray executor: throughput with 1 and 2 workers, and its overhead over the local executor.

LiteMedSAM (the bundled weights) on the bundled 2D sample (13 slices of the Colin27 T1 MRI,
AAL regions) with box, point1, box_jitter and clicks. Three runs into fresh folders: the local
executor with one torch thread, then a local Ray instance (2 CPUs) with one worker and with two
(one CPU, one torch thread each). Each run is timed from the moment its workers are ready (the
driver's ``cases_total`` callback) to its last case; Ray's start-up (``ray.init`` and loading the
first model) is printed apart. Targets (issue 14): 2 workers / 1 worker throughput >= 1.6 on this
2-core machine; Ray with 1 worker / local time <= 1.15.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from _target import report

from samia.data import sample_dataset_path
from samia.evaluation import EvaluationConfig, ProgressHooks, evaluate
from samia.evaluation.ray_executor import LOOPBACK_ONLY, RayExecutor

OPTIONS = dict(
    model="litemedsam",
    strategies=["box", "point1", "box_jitter", "clicks"],
    jitter_repeats=2,
    max_clicks=5,
)


def timed_run(out: Path, executor: RayExecutor | None) -> tuple[float, float, int]:
    """``(seconds before the first case, seconds of the cases, rows)`` of one run into ``out``."""
    marks: dict[str, float] = {}
    hooks = ProgressHooks(cases_total=lambda total: marks.setdefault("cases", time.perf_counter()))
    started = time.perf_counter()
    config = EvaluationConfig.from_dict(dict(data=str(sample_dataset_path("colin27_aal_2d")), out=str(out), **OPTIONS))
    outcome = evaluate(config, hooks, executor)
    ended = time.perf_counter()
    return marks["cases"] - started, ended - marks["cases"], len(outcome.results)


def main() -> int:
    os.environ.update(LOOPBACK_ONLY)
    import ray
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _, local, rows = timed_run(root / "local", None)
        print(f"local executor, 1 thread: {local:.1f} s for {rows} rows")
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
        print(f"ray.init (local instance): {time.perf_counter() - started:.1f} s")
        measured = {}
        for workers in (1, 2):
            startup, cases, rows = timed_run(root / f"ray{workers}", RayExecutor(workers=workers))
            measured[workers] = cases
            print(f"ray, {workers} worker(s): {cases:.1f} s for {rows} rows (+{startup:.1f} s to load the first model)")
        ray.shutdown()
    overhead = report(measured[1] / local, "<=", 1.15)
    print("(above: Ray with 1 worker / local; below: throughput of 2 workers / 1 worker)")
    return max(overhead, report(measured[1] / measured[2], ">=", 1.6))


if __name__ == "__main__":
    sys.exit(main())
