"""Class 2: a results folder holds one run, and says truthfully what it holds."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml
from hostile_files import folder_dataset, one_error_line, square_case

from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, evaluate
from samia.files import FolderLock

RUN = """
import sys
from samia.cli.main import main
sys.argv = ["samia", "evaluate", "--data", sys.argv[1], "--model", "tiny_sam", "--out", sys.argv[2],
            "--strategy", "box", "--seed", sys.argv[3]]
main()
"""


@pytest.fixture
def data(tmp_path):
    return folder_dataset(tmp_path / "data", {f"c{i}": square_case(i) for i in range(4)})


def test_two_evaluations_into_one_folder_one_is_refused(data, tmp_path):
    out = tmp_path / "run"
    with FolderLock(out):  # a first run holds the folder
        second = subprocess.run([sys.executable, "-c", RUN, str(data), str(out), "1"], capture_output=True, text=True)
    assert second.returncode == 2
    assert "in use by another samia process" in one_error_line(second.stderr)
    assert not (out / "results.parquet").exists() and not (out / "config.yaml").exists()
    # both at once, for real: one finishes, the other is refused or runs after it; never mixed seeds
    runs = [
        subprocess.Popen([sys.executable, "-c", RUN, str(data), str(out), seed], stderr=subprocess.PIPE, text=True)
        for seed in ("0", "1")
    ]
    codes = [run.wait() for run in runs]
    assert 0 in codes
    results = pd.read_parquet(out / "results.parquet")
    assert results["seed"].nunique() == 1
    seed = int(results["seed"].iloc[0])
    assert yaml.safe_load((out / "config.yaml").read_text())["config"]["seed"] == seed


def test_a_killed_runs_lock_is_taken_over(data, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from samia.files import FolderLock\n"
            f"import os, signal\nlock = FolderLock({str(out)!r}).__enter__()\n"
            "os.kill(os.getpid(), signal.SIGKILL)",
        ]
    )
    assert holder.wait() == -9 and (out / ".lock").is_file()
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box"]))
    )
    assert not outcome.results.empty


def test_replaced_weights_are_refused_on_resume(data, tmp_path):
    import torch

    from samia.models import build_model

    weights = tmp_path / "w.pt"
    model = build_model("tiny_sam")
    torch.save(model.state_dict(), weights)
    config = dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
    evaluate(EvaluationConfig.from_dict(dict(checkpoint=str(weights), **config)))
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    torch.save(model.state_dict(), weights)  # same path, other weights
    with pytest.raises(ConfigurationError, match="weights_sha256"):
        evaluate(EvaluationConfig.from_dict(dict(checkpoint=str(weights), **config)))


def test_the_same_run_given_differently_resumes(data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box", "point1"]))
    )
    monkeypatch.chdir(data.parent)
    again = evaluate(
        EvaluationConfig.from_dict(dict(data="data", out=str(out), model="tiny_sam", strategies=["point1", "box"]))
    )
    assert again.units_run == 0 and len(again.results) == len(first.results)


def test_a_folder_whose_run_wrote_no_row_is_reused(data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(
        yaml.safe_dump({"config": {"data": "x", "out": str(out), "model": "tiny_sam", "strategies": ["point1"]}})
    )
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box"]))
    )
    assert set(outcome.results["strategy"]) == {"box"}


def test_a_fixed_failure_leaves_errors_csv(tmp_path):
    data = folder_dataset(tmp_path / "data", {"c0": square_case(0)})
    broken = data / "images" / "c1.png"
    broken.write_bytes(b"not an image")
    (data / "masks" / "c1.png").write_bytes((data / "masks" / "c0.png").read_bytes())
    config = dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
    assert len(evaluate(EvaluationConfig.from_dict(dict(**config))).errors) == 1
    broken.write_bytes((data / "images" / "c0.png").read_bytes())  # the user fixes the file
    fixed = evaluate(EvaluationConfig.from_dict(dict(**config)))
    assert fixed.errors.empty and set(fixed.results["case"]) == {"c0", "c1"}
    assert pd.read_csv(tmp_path / "run" / "errors.csv").empty


def test_a_corrupt_config_yaml_is_one_line(data, tmp_path, cli):
    out = tmp_path / "run"
    evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box"])))
    (out / "config.yaml").write_text("config: [unclosed\n  : :")
    code, _, stderr = cli("evaluate", "--data", data, "--model", "tiny_sam", "--strategy", "box", "--out", out)
    assert code == 2 and "config.yaml is corrupt" in one_error_line(stderr)


def test_out_inside_the_dataset_is_refused(data, tmp_path, cli):
    for out in (data, data / "masks" / "run"):
        code, _, stderr = cli(
            "evaluate", "--data", data, "--model", "tiny_sam", "--strategy", "box", "--out", out, "--save-masks"
        )
        assert code == 2 and "inside the dataset folder" in one_error_line(stderr)
    assert sorted(p.name for p in (data / "masks").iterdir()) == ["c0.png", "c1.png", "c2.png", "c3.png"]
