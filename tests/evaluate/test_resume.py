"""A run killed at an arbitrary moment and re-run ends with every row exactly once."""

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from samia.data import write_phantom_dataset
from samia.evaluate import EvaluationConfig, evaluate

RUN = """
import sys
from samia.evaluate import EvaluationConfig, evaluate
evaluate(EvaluationConfig(data=sys.argv[1], out=sys.argv[2], model="tiny_litemedsam", strategies=["box", "point1"], save_masks=True))
"""


def test_killed_run_resumes_with_every_row_exactly_once(tmp_path):
    data = write_phantom_dataset(tmp_path / "data", 10, np.random.default_rng(11), shape=(96, 96))
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", RUN, str(data), str(out)])
    units = out / ".journal" / "units"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if units.is_dir() and len(list(units.glob("*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(list(units.glob("*.parquet")))
    assert 2 <= finished_before < 10

    config = dict(data=str(data), model="tiny_litemedsam", strategies=["box", "point1"], save_masks=True)
    resumed = evaluate(EvaluationConfig(out=str(out), **config))
    assert resumed.units_skipped == finished_before and resumed.units_run == 10 - finished_before
    reference = evaluate(EvaluationConfig(out=str(tmp_path / "reference"), **config))

    key = ["case", "slice", "label", "component", "strategy", "variant", "selection"]
    assert not resumed.results.duplicated(key).any()
    pd.testing.assert_frame_equal(resumed.results, reference.results, check_exact=False, rtol=1e-4)
    assert all((out / path).is_file() for path in resumed.results["mask_path"])
    assert not list((out / ".journal").rglob(".*.partial*"))
