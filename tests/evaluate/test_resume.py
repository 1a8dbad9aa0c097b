"""A run killed with SIGKILL and re-run ends with every row exactly once.

The run kills itself at a chosen point (after its third finished unit, or in the middle of writing
its fourth: temporary written, not yet renamed), so the test depends on no timing window. Only
visible unit files count: ``pathlib`` globs also match the journal's hidden ``.partial`` files.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from samia.data import write_phantom_dataset
from samia.evaluation import EvaluationConfig, evaluate

N_CASES = 6
KILL_AFTER_UNITS = 3

RUN = """
import os, signal, sys
import samia.evaluation.folders as folders
import samia.evaluation.store as store
from samia.evaluation import EvaluationConfig, evaluate

where, after = sys.argv[3], int(sys.argv[4])
written = []
original_write_unit, original_write_bytes = store.ResultsStore.write_unit, folders.atomic_write_bytes

def write_unit(self, key, rows, meta):
    original_write_unit(self, key, rows, meta)
    written.append(key)
    if len(written) == after + (where == "mid_write"):
        os.kill(os.getpid(), signal.SIGKILL)

def write_bytes(path, data):
    if where == "mid_write" and len(written) == after and "units" in str(path):
        temporary = path.with_name("." + path.name + ".0123456789ab.partial.parquet")
        temporary.write_bytes(data[: len(data) // 2])  # a writer killed mid-file leaves this behind
        return path
    return original_write_bytes(path, data)

store.ResultsStore.write_unit = write_unit
folders.atomic_write_bytes = write_bytes
evaluate(EvaluationConfig.from_dict(dict(data=sys.argv[1], out=sys.argv[2], model="tiny_litemedsam", strategies=["box", "point1"], save_masks=True)))
"""

CONFIG = dict(model="tiny_litemedsam", strategies=["box", "point1"], save_masks=True)


def _visible_units(out):
    return [p for p in (out / ".journal" / "units").glob("*.parquet") if not p.name.startswith(".")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("resume"), N_CASES, np.random.default_rng(11), shape=(96, 96))


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    return evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(dataset), out=str(tmp_path_factory.mktemp("reference") / "run"), **CONFIG)
        )
    )


@pytest.mark.parametrize("where", ["between_units", "mid_write"])
def test_killed_run_resumes_with_every_row_exactly_once(where, dataset, reference, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.run([sys.executable, "-c", RUN, str(dataset), str(out), where, str(KILL_AFTER_UNITS)])
    assert process.returncode == -9  # killed, not finished
    assert len(_visible_units(out)) == KILL_AFTER_UNITS
    if where == "mid_write":
        assert list((out / ".journal" / "units").glob(".*.partial*"))

    resumed = evaluate(EvaluationConfig.from_dict(dict(data=str(dataset), out=str(out), **CONFIG)))
    assert resumed.units_skipped == KILL_AFTER_UNITS and resumed.units_run == N_CASES - KILL_AFTER_UNITS
    key = ["case", "slice", "label", "component", "strategy", "variant", "selection"]
    assert not resumed.results.duplicated(key).any()
    pd.testing.assert_frame_equal(resumed.results, reference.results, check_exact=False, rtol=1e-4)
    assert all((out / path).is_file() for path in resumed.results["mask_path"])
    assert not list((out / ".journal").rglob(".*.partial*"))
