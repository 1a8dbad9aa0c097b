"""Shared by the Ray tests: a local Ray (loopback only: ``tests/conftest.py`` sets Ray's
single-machine mode before anything imports Ray), and hooks that run inside Ray workers.

The hooks are ``ProgressHooks.unit_started`` callbacks. They are pickled by value (this module is
not importable in a worker), and they act at a chosen unit, so no test depends on timing.
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import ray
import ray.cloudpickle

ray.cloudpickle.register_pickle_by_value(__import__(__name__))

ROW_KEY = ["case", "level", "slice", "label", "component", "strategy", "variant", "n_clicks", "selection"]


def start_local_ray(num_cpus: int = 2) -> None:
    """A local Ray instance for a test module (no dashboard)."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=num_cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)


@dataclass
class KillAtUnit:
    """SIGKILL a process when a unit whose description starts with ``unit`` starts, at most
    ``times`` times in all processes together (marker files created with ``O_EXCL``).

    Attributes:
        unit: description prefix, e.g. ``"phantom_002"`` or ``"phantom_001 slice 3"``.
        markers: a folder for the marker files (one per kill).
        times: kills in all.
        pid: the process to kill; None = the worker the hook runs in.
    """

    unit: str
    markers: str
    times: int = 1
    pid: int | None = None

    def __call__(self, description: str, prompts: int) -> None:
        if not description.startswith(self.unit):
            return
        for kill in range(self.times):
            try:
                os.close(os.open(Path(self.markers) / f"kill{kill}", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            os.kill(self.pid or os.getpid(), signal.SIGKILL)
            return

    def kills(self) -> int:
        return len(list(Path(self.markers).glob("kill*")))


@dataclass
class RecordNode:
    """Record the Ray node of every unit in ``folder``; a worker's first unit waits until workers
    on ``meet`` distinct nodes have begun one (a barrier on files, so a fast worker cannot take
    every case before the others have started)."""

    folder: str
    meet: int = 1

    def __call__(self, description: str, prompts: int) -> None:
        node = ray.get_runtime_context().get_node_id()
        mine = Path(self.folder) / f"{node}-{os.getpid()}"
        first = not mine.exists()
        with mine.open("a") as handle:
            handle.write(description + "\n")
        deadline = time.monotonic() + 300  # a safety net only: the other worker starts in seconds
        while first and len(self.nodes()) < self.meet and time.monotonic() < deadline:
            time.sleep(0.05)

    def nodes(self) -> set[str]:
        return {p.name.rsplit("-", 1)[0] for p in Path(self.folder).iterdir()}


def assert_same_rows(results: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Every row exactly once, and bit for bit the reference's."""
    assert not results.duplicated(ROW_KEY).any()
    assert len(results) == len(reference) > 0
    pd.testing.assert_frame_equal(results, reference, check_exact=True)


def assert_same_files(out: Path, reference: Path) -> None:
    """``summary.csv`` and ``prompts.jsonl`` byte for byte, ``results.parquet`` row for row."""
    for name in ("summary.csv", "prompts.jsonl", "errors.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert_same_rows(pd.read_parquet(out / "results.parquet"), pd.read_parquet(reference / "results.parquet"))
