"""Run folders on a local disk and behind a filesystem URI behave alike (atomic, hidden temporaries
left out), and an evaluation into a ``file://`` URI writes the files of one into a path."""

import numpy as np
import pandas as pd
import pytest

from samia.data import write_phantom_dataset
from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, evaluate
from samia.evaluation.folders import FilesystemFolder, LocalFolder, open_folder

OPTIONS = dict(model="tiny_litemedsam", strategies=["box", "point1"])


@pytest.fixture(params=["path", "uri"])
def folder(request, tmp_path):
    root = tmp_path / "run"
    return open_folder(root if request.param == "path" else root.as_uri())


def test_a_folder_writes_atomically_and_lists_only_finished_files(folder, tmp_path):
    assert isinstance(folder, LocalFolder if "://" not in folder.location else FilesystemFolder)
    folder.write_bytes("units/a.parquet", b"first")
    folder.write_bytes("units/a.parquet", b"second")  # replaced whole
    folder.write_bytes("units/b.json", b"{}")
    stale = tmp_path / "run" / "units" / ".c.parquet.0123456789ab.partial"
    stale.write_bytes(b"half")  # what a killed writer leaves
    assert folder.read_bytes("units/a.parquet") == b"second"
    assert folder.names("units") == ["units/a.parquet", "units/b.json"]
    assert folder.names("units", suffix=".json") == ["units/b.json"] and folder.names("missing") == []
    assert folder.names("units", prefix="a") == ["units/a.parquet"]
    assert folder.remove_partials("units") == 1 and not stale.exists()
    folder.delete("units/b.json")
    folder.delete("units/b.json")  # absent: nothing to do
    assert not folder.is_file("units/b.json") and folder.is_file("units/a.parquet")
    assert sorted(p.name for p in (tmp_path / "run" / "units").iterdir()) == ["a.parquet"]  # no temporaries


def test_an_evaluation_into_a_file_uri_writes_the_files_of_a_path(tmp_path):
    data = write_phantom_dataset(tmp_path / "data", 3, np.random.default_rng(4), shape=(64, 64))
    by_path = evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=str(tmp_path / "path"), **OPTIONS)))
    by_uri = evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=(tmp_path / "uri").as_uri(), **OPTIONS)))
    pd.testing.assert_frame_equal(by_uri.results, by_path.results, check_exact=True)
    for name in ("results.parquet", "summary.csv", "prompts.jsonl", "errors.csv", "warnings.csv"):
        assert (tmp_path / "uri" / name).is_file(), name
    assert (tmp_path / "uri" / "summary.csv").read_bytes() == (tmp_path / "path" / "summary.csv").read_bytes()
    resumed = evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=(tmp_path / "uri").as_uri(), **OPTIONS)))
    assert resumed.units_run == 0 and len(resumed.results) == len(by_path.results)


def test_uri_folders_refuse_what_they_cannot_do(tmp_path):
    with pytest.raises(ConfigurationError, match="--save-masks needs --out on a local or mounted filesystem"):
        EvaluationConfig.from_dict(dict(data=str(tmp_path), out="s3://bucket/run", save_masks=True, **OPTIONS))
    with pytest.raises(ConfigurationError, match=r"--out nosuch://x: cannot open it"):
        open_folder("nosuch://x")
