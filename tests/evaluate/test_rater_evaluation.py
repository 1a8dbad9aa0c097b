"""``samia evaluate`` on multi-rater data: rows scored from the model's own samples, the same rows
from every layout, a killed run resumed with every row once, failures recorded, the report."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samia.data.rater_phantoms import write_rater_dataset
from samia.data.raters import rater_objects, read_rater_labels, scan_rater_dataset
from samia.evaluation.raters import RaterEvaluationConfig, _object_seed, evaluate_raters, map_file
from samia.metrics.multirater import generalised_energy_distance, hungarian_matched_iou, inter_rater_dice
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts.primitives import tight_box
from samia.samplers import jitter_samples
from samia.transforms import preset_for, to_rgb_uint8
from samia.types import Prompt

MODEL = "tiny_litemedsam"
N_CASES = 4


def _config(data, out, **options):
    return RaterEvaluationConfig.from_dict(
        {"data": str(data), "out": str(out), "model": MODEL, "samples": 4, **options}
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_rater_dataset(tmp_path_factory.mktemp("raters") / "folders", N_CASES, "rater_folders", seed=2)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    return evaluate_raters(_config(dataset, tmp_path_factory.mktemp("run") / "out"))


def test_rows_score_the_models_own_samples_against_every_rater(dataset, reference):
    results = reference.results
    assert len(results) == N_CASES * 4 and set(results["sampler"]) == {"single", "multimask", "jitter", "flips"}
    assert results.groupby("sampler")["n_samples"].max().to_dict() == {
        "single": 1,
        "multimask": 3,
        "jitter": 4,
        "flips": 4,
    }
    assert (results.loc[results.sampler == "single", "diversity"] == 0).all()
    # recompute one jitter row outside the runner, with the run's seed rule reproduced by hand
    scan = scan_rater_dataset(dataset)
    image, labels = read_rater_labels(scan.cases[1], scan)
    [obj] = rater_objects(labels, scan.raters)
    predictor = SamiaPredictor(build_model(MODEL))
    predictor.set_image(to_rgb_uint8(image, preset_for(image)))
    row = results[(results.case == "phantom_001") & (results.sampler == "jitter")].iloc[0]
    assert json.loads(row.box) == tight_box(obj.masks.any(axis=0)).tolist()
    samples = jitter_samples(
        predictor, Prompt(box=tight_box(obj.masks.any(axis=0))), 4, _object_seed(0, "phantom_001", 1, "jitter")
    )
    assert row.ged == pytest.approx(generalised_energy_distance(samples, obj.masks), abs=1e-12)
    assert row.matched_iou == pytest.approx(hungarian_matched_iou(samples, obj.masks), abs=1e-12)
    assert row.inter_rater_dice == pytest.approx(inter_rater_dice(obj.masks))
    assert row.n_raters == 4 and row.raters == ",".join(scan.raters)
    with np.load(Path(reference.out) / map_file("phantom_001")) as maps:
        np.testing.assert_allclose(maps["jitter_1"], samples.mean(axis=0), atol=1e-3)
        np.testing.assert_allclose(maps["raters_1"], obj.masks.mean(axis=0), atol=1e-3)


@pytest.mark.parametrize("layout", ["rater_suffix", "rater_stack"])
def test_every_layout_gives_the_same_rows(layout, reference, tmp_path):
    data = write_rater_dataset(tmp_path / layout, N_CASES, layout, seed=2)
    outcome = evaluate_raters(_config(data, tmp_path / "out"))
    columns = [c for c in reference.results.columns if c != "raters"]
    pd.testing.assert_frame_equal(outcome.results[columns], reference.results[columns])
    assert outcome.scan.layout == layout


RUN = """
import os, signal, sys
import samia.evaluation.raters as raters
from samia.evaluation.raters import RaterEvaluationConfig, _object_seed, evaluate_raters, map_file

original, done = raters._run_case, []
def run_case(evaluator, case, folder, store):
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    original(evaluator, case, folder, store)
    done.append(case.case_id)
raters._run_case = run_case
evaluate_raters(RaterEvaluationConfig.from_dict(dict(data=sys.argv[1], out=sys.argv[2], model="tiny_litemedsam", samples=4)))
"""


def test_a_killed_run_resumes_with_every_row_once(dataset, reference, tmp_path):
    out = tmp_path / "killed"
    assert subprocess.run([sys.executable, "-c", RUN, str(dataset), str(out)]).returncode == -9
    assert len(list((out / ".journal" / "raters").glob("[!.]*.json"))) == 2
    resumed = evaluate_raters(_config(dataset, out))
    assert not resumed.results.duplicated(["case", "label", "sampler"]).any()
    pd.testing.assert_frame_equal(resumed.results, reference.results)


def test_a_broken_case_is_recorded_and_the_run_goes_on(dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    (data / "raters" / "generous" / "phantom_001.png").write_bytes(b"not a png")
    outcome = evaluate_raters(_config(data, tmp_path / "out", samplers=["single"]))
    assert sorted(outcome.results["case"]) == ["phantom_000", "phantom_002", "phantom_003"]
    [error] = outcome.errors.itertuples()
    assert error.case == "phantom_001" and error.path.endswith("raters/generous/phantom_001.png")
    assert len(pd.read_csv(tmp_path / "out" / "errors.csv")) == 1
    again = evaluate_raters(_config(data, tmp_path / "out", samplers=["single"]))  # resumed: the error stays once
    assert len(again.errors) == 1 and len(again.results) == 3


def test_another_run_in_the_same_folder_is_refused(dataset, tmp_path):
    from samia.errors import ConfigurationError

    evaluate_raters(_config(dataset, tmp_path / "out", samplers=["single"], limit=1))
    with pytest.raises(ConfigurationError, match="samples: 4 -> 2"):
        evaluate_raters(_config(dataset, tmp_path / "out", samplers=["single"], samples=2))


def test_cli_and_report(cli, dataset, phantom_2d, tmp_path):
    code, out, err = cli("evaluate", "--data", dataset, "--out", tmp_path / "run", "--model", MODEL,
                         "--sampler", "single", "--sampler", "jitter", "--samples", "3")  # fmt: skip
    assert code == 0, err
    assert "raters generous, exact_with_lobe, exact_without_lobe, tight_smooth" in out and "jitter: GED" in out
    code, out, err = cli("report", tmp_path / "run", "--out", tmp_path / "report", "--resamples", "200")
    assert code == 0, err
    agreement = pd.read_csv(tmp_path / "report" / "tables" / "raters_agreement.csv").set_index("rater")
    scan = scan_rater_dataset(dataset)
    masks = [rater_objects(read_rater_labels(case, scan)[1], scan.raters)[0].masks for case in scan.cases]
    generous_vs_others = [2 * (m[0] & m[j]).sum() / (m[0].sum() + m[j].sum()) for m in masks for j in range(1, 4)]
    assert agreement.loc["generous", "inter-rater Dice"] == pytest.approx(np.mean(generous_vs_others))
    assert len(list((tmp_path / "report" / "figures").glob("uncertainty_*.png"))) == N_CASES
    assert "Many raters" in (tmp_path / "report" / "report.html").read_text()
    code, _, err = cli("evaluate", "--data", dataset, "--out", tmp_path / "x", "--model", MODEL, "--strategy", "box")
    assert code != 0 and "scored with --sampler (not --strategy)" in err
    code, _, err = cli(
        "evaluate", "--data", phantom_2d, "--out", tmp_path / "y", "--model", MODEL, "--sampler", "jitter"
    )
    assert code != 0 and "--sampler is for multi-rater datasets" in err
