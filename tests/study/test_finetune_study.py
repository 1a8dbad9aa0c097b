"""``samia finetune-study`` end to end on tiny random models: what each run trains and tests on,
its records and curves, resume, a failed run, another study in the folder, the report."""

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from samia.cli.main import app
from samia.errors import ConfigurationError
from samia.finetuning.config import FinetuneConfig, read_run_config, write_run_config
from samia.finetuning.methods import check_applies, prepare
from samia.models import build_model
from samia.study import run_study
from samia.study.config import read_study_file

runner = CliRunner()


def _run_folders(out):
    return sorted(p.parent for p in (out / "runs").glob("*/*/run.yaml"))


def test_each_run_trains_on_its_subset_and_is_tested_on_the_held_out_cases(make_study):
    config = make_study()
    outcome = run_study(config)
    out = outcome.out
    assert (outcome.done, outcome.skipped, outcome.failed) == (2, 0, 0)
    _, split = read_study_file(out / "study.yaml")
    decoder_size = sum(p.numel() for p in build_model("tiny_sam").mask_decoder.parameters())
    folders = _run_folders(out)
    assert [f.name for f in folders] == ["n001_r0", "n002_r0"]
    for folder in folders:
        record = yaml.safe_load((folder / "run.yaml").read_text())
        _, provenance = read_run_config(folder / "finetune" / "finetune.yaml")
        assert provenance["train_cases"] == record["cases"] and len(record["cases"]) == record["n_cases"]
        assert provenance["val_cases"] == split["val"]
        assert set(record["cases"]) <= set(split["pool"])
        results = pd.read_parquet(folder / "test" / "results.parquet")
        assert set(results["case"]) == set(split["test"])  # tested on the held-out cases only
        assert record["train_seconds"] > 0 and record["peak_rss_mb"] > 0
        assert record["trainable_parameters"] == decoder_size
        for score in record["test"]:  # the run's Dice is the mean over its test objects
            rows = results[(results["strategy"] == score["strategy"]) & (results["selection"] == score["selection"])]
            assert score["dice_mean"] == pytest.approx(rows["dice"].mean())
            assert score["n"] == len(rows)
    zero_shot = pd.read_parquet(out / "zero_shot" / "results.parquet")
    assert set(zero_shot["case"]) == set(split["test"])
    assert zero_shot["weights_sha256"].nunique() == 1
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 * 2 * 3  # zero-shot + 2 runs, x 2 strategies x 3 selection rules
    curve = pd.read_csv(out / "curve.csv")
    assert set(zip(curve["method"], curve["n_cases"])) == {("zero-shot", 0), ("decoder", 1), ("decoder", 2)}
    assert (out / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    assert pd.read_csv(out / "errors.csv").empty


def test_rerun_skips_done_runs_extends_and_refuses_another_study(make_study, phantom_cases):
    run_study(make_study(cases=[1]))
    out = make_study().out
    (folder,) = _run_folders(Path(out))
    written = (folder / "run.yaml").stat().st_mtime_ns
    again = run_study(make_study(cases=[1]))
    assert (again.done, again.skipped) == (0, 1)
    assert (folder / "run.yaml").stat().st_mtime_ns == written
    grown = run_study(make_study(cases=[1], repeats=2))  # a second repeat: only its run is new
    assert (grown.done, grown.skipped) == (1, 1)
    narrower = run_study(make_study(cases=[1], repeats=1))  # asks for less: the record keeps all runs
    assert (narrower.done, narrower.skipped) == (0, 1)
    recorded, _ = read_study_file(Path(out) / "study.yaml")
    assert recorded.repeats == 2 and recorded.cases == [1]
    assert sorted(pd.read_csv(Path(out) / "runs.csv").query("method == 'decoder'")["repeat"].unique()) == [0, 1]
    with pytest.raises(ConfigurationError, match=r"holds a different study \(training: "):
        run_study(make_study(cases=[1], training={"epochs": 2}))
    with pytest.raises(ConfigurationError, match=r"holds a different study \(test_fraction: 0.3 -> 0.5\)"):
        run_study(make_study(cases=[1], test_fraction=0.5))


def test_a_run_killed_before_its_record_resumes_without_training_again(make_study):
    config = make_study(cases=[2])
    run_study(config)
    (folder,) = _run_folders(Path(config.out))
    before = yaml.safe_load((folder / "run.yaml").read_text())
    history = (folder / "finetune" / "history.csv").read_bytes()
    results = pd.read_parquet(folder / "test" / "results.parquet")
    (folder / "run.yaml").unlink()  # killed after training and testing, before the record
    outcome = run_study(config)
    assert (outcome.done, outcome.skipped) == (1, 0)
    after = yaml.safe_load((folder / "run.yaml").read_text())
    assert (folder / "finetune" / "history.csv").read_bytes() == history  # no epoch trained twice
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "test" / "results.parquet"), results)
    assert {k: v for k, v in after.items() if k != "run_seconds"} == {
        k: v for k, v in before.items() if k != "run_seconds"
    }


def test_a_failed_run_is_recorded_the_study_goes_on_and_the_next_run_retries_it(make_study):
    config = make_study()
    first = run_study(make_study(cases=[1]))  # to learn the run folders' names and options
    (done,) = _run_folders(first.out)
    blocker = done.parent / "n002_r0" / "finetune" / "finetune.yaml"
    other, provenance = read_run_config(done / "finetune" / "finetune.yaml")
    other.training = dataclasses.replace(other.training, lr=0.5)
    write_run_config(blocker, other, provenance)  # the folder of n=2 holds another fine-tuning run
    failed = run_study(config)
    assert (failed.done, failed.skipped, failed.failed) == (0, 1, 1)
    (error,) = failed.errors.to_dict("records")
    assert error["run"] == "decoder/n002_r0" and error["error"] == "TrainingProcessError"
    assert "holds a different fine-tuning run" in error["message"]
    assert json.loads((blocker.parents[1] / "error.json").read_text())["error"] == "TrainingProcessError"
    blocker.unlink()
    retried = run_study(config)
    assert (retried.done, retried.skipped, retried.failed) == (1, 1, 0)
    assert retried.errors.empty and not (blocker.parents[1] / "error.json").exists()


def test_a_method_that_needs_encoder_blocks_is_refused_on_a_model_without_them():
    model = build_model("tiny_sam")
    model.image_encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    for method in ("lora", "adapter", "ssam"):
        with pytest.raises(ConfigurationError, match=f"--method {method} does not apply to tiny_sam"):
            check_applies(model, method)
        with pytest.raises(ConfigurationError, match=f"--method {method} does not apply"):  # samia finetune too
            prepare(model, FinetuneConfig.from_dict(dict(data="d", out="o", model="tiny_sam", method=method)))
    check_applies(model, "decoder")


def test_cli_study_then_report_and_bad_cases(phantom_cases, tmp_path):
    out = tmp_path / "study"
    common = ["finetune-study", "--data", str(phantom_cases), "--model", "tiny_sam", "--out", str(out),
              "--method", "decoder", "--val-cases", "1", "--repeats", "1", "--epochs", "1"]  # fmt: skip
    result = runner.invoke(app, [*common, "--cases", "9"])
    assert isinstance(result.exception, ConfigurationError)
    assert "--cases 9 is more than the 4 training cases" in str(result.exception)
    result = runner.invoke(app, [*common, "--cases", "1"])
    assert result.exit_code == 0, result.output
    assert "1 runs done" in result.output and "learning curves:" in result.output
    (folder,) = _run_folders(out)
    record = yaml.safe_load((folder / "run.yaml").read_text())
    single = ", ".join(f"{s['strategy']} {s['dice_mean']:.3f}" for s in record["test"] if s["selection"] == "single")
    assert f": test Dice {single} (best epoch" in result.output  # progress line: the one answer's Dice per strategy
    report = tmp_path / "report"
    result = runner.invoke(app, ["report", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    html = (report / "report.html").read_text()
    assert "Learning curves: study" in html and "zero-shot" in html
    assert (report / "figures" / "study_study_learning_curve.png").is_file()
    assert (report / "tables" / "study_study_curve.csv").is_file()
    mixed = runner.invoke(app, ["report", str(out), str(out / "zero_shot"), "--out", str(tmp_path / "mixed")])
    assert isinstance(mixed.exception, ConfigurationError)
    assert "is not a study folder" in str(mixed.exception)


def test_a_study_on_all_empty_masks_is_one_line_before_any_training(tmp_path):
    import numpy as np
    from PIL import Image

    data = tmp_path / "empty"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    for index in range(6):
        Image.fromarray(np.random.default_rng(index).integers(0, 255, (40, 40), dtype=np.uint8)).save(
            data / "images" / f"c{index}.png"
        )
        Image.fromarray(np.zeros((40, 40), np.uint8)).save(data / "masks" / f"c{index}.png")
    out = tmp_path / "study"
    result = runner.invoke(app, ["finetune-study", "--data", str(data), "--model", "tiny_sam", "--out", str(out),
                                 "--method", "decoder", "--cases", "1", "--repeats", "1"])  # fmt: skip
    assert isinstance(result.exception, ConfigurationError)
    message = str(result.exception)
    assert "\n" not in message and str(data) in message and "label map has no object" in message
    assert str(out / "zero_shot" / "errors.csv") in message
    assert not (out / "runs").exists() or not any((out / "runs").rglob("run.yaml"))


def test_a_multi_rater_study_scores_ua_adapter_by_its_samples_and_the_others_by_the_samplers(tmp_path):
    from samia.data.rater_phantoms import RATER_MODELS, write_rater_dataset

    data = write_rater_dataset(tmp_path / "raters", 6, layout="rater_suffix", seed=3)
    out = tmp_path / "study"
    result = runner.invoke(app, ["finetune-study", "--data", str(data), "--model", "tiny_litemedsam", "--out", str(out),
                                 "--method", "decoder", "--method", "ua_adapter", "--cases", "2", "--repeats", "1",
                                 "--val-cases", "1", "--epochs", "1", "--objects-per-image", "1", "--lr", "1e-3",
                                 "--latent-dim", "4", "--box-jitter", "2", "--sampler", "jitter", "--sampler", "single",
                                 "--samples", "3"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 runs done" in result.output and "ged_mean" in result.output
    config, split = read_study_file(out / "study.yaml")
    assert split["raters"] == [r.name for r in RATER_MODELS] and len(split["test"]) == 2
    zero_shot = pd.read_parquet(out / "zero_shot" / "raters.parquet")
    assert set(zero_shot["case"]) == set(split["test"]) and set(zero_shot["sampler"]) == {"jitter", "single"}
    expected = {"decoder": {"jitter", "single"}, "ua_adapter": {"latent"}}
    for folder in _run_folders(out):
        record = yaml.safe_load((folder / "run.yaml").read_text())
        _, provenance = read_run_config(folder / "finetune" / "finetune.yaml")
        assert sorted(provenance["train_cases"]) == sorted(record["cases"]) and provenance["val_cases"] == split["val"]
        assert provenance["layout"] == "rater_suffix"
        results = pd.read_parquet(folder / "test" / "raters.parquet")
        assert set(results["case"]) == set(split["test"])  # tested on the held-out cases only
        assert set(results["sampler"]) == expected[record["method"]]
        assert set(results["n_samples"]) == ({3} if record["method"] == "ua_adapter" else {1, 3})
        for score in record["test"]:  # the run's GED is the mean over its test objects
            rows = results[results["sampler"] == score["sampler"]]
            assert score["ged_mean"] == pytest.approx(rows["ged"].mean()) and score["n"] == len(rows)
            assert score["matched_iou_mean"] == pytest.approx(rows["matched_iou"].mean())
        scores = ", ".join(f"{s['sampler']} {s['ged_mean']:.3f}" for s in record["test"])
        assert f"{folder.parent.name}/{folder.name}: test GED {scores} (best epoch" in result.output  # progress line
    curve = pd.read_csv(out / "curve.csv")
    assert set(zip(curve["method"], curve["n_cases"], curve["sampler"])) == {
        ("zero-shot", 0, "jitter"), ("zero-shot", 0, "single"), ("decoder", 2, "jitter"), ("decoder", 2, "single"),
        ("ua_adapter", 2, "latent"),
    }  # fmt: skip
    assert curve["ged_mean"].between(0, 2).all()
    assert (out / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    report = tmp_path / "report"
    result = runner.invoke(app, ["report", str(out), "--out", str(report)])
    assert result.exit_code == 0, result.output
    markdown = (report / "report.md").read_text()
    assert "test GED per method and training cases (per sampler)" in markdown and "latent" in markdown
    again = runner.invoke(app, ["finetune-study", "--data", str(data), "--model", "tiny_litemedsam", "--out", str(out),
                                "--method", "decoder", "--cases", "2", "--repeats", "1", "--val-cases", "1",
                                "--epochs", "1", "--objects-per-image", "1", "--lr", "1e-3", "--latent-dim", "4",
                                "--box-jitter", "2", "--sampler", "flips", "--samples", "3"])  # fmt: skip
    assert isinstance(again.exception, ConfigurationError) and "samplers: ['jitter', 'single'] -> ['flips']" in str(
        again.exception
    )
    strategy = runner.invoke(app, ["finetune-study", "--data", str(data), "--model", "tiny_litemedsam", "--out",
                                   str(tmp_path / "other"), "--method", "decoder", "--cases", "2", "--strategy", "box"])  # fmt: skip
    assert isinstance(strategy.exception, ConfigurationError) and "\n" not in str(strategy.exception)
    assert str(strategy.exception).startswith("--strategy scores one-truth data; ")
    assert not (tmp_path / "other").exists()  # refused before anything is written


def test_ua_adapter_in_a_study_of_one_truth_data_is_one_line_before_any_training(make_study):
    config = make_study(methods=["decoder", "ua_adapter"])
    with pytest.raises(
        ConfigurationError, match=r"^--method ua_adapter learns from several raters' masks; .* has one truth"
    ):
        run_study(config)
    assert not (Path(config.out) / "study.yaml").exists()
    with pytest.raises(ConfigurationError, match=r"unknown samplers \['latent'\]"):
        make_study(samplers=["latent"])
    result = runner.invoke(app, ["finetune-study", "--data", config.data, "--model", "tiny_sam", "--out",
                                 config.out, "--method", "decoder", "--cases", "1", "--sampler", "jitter"])  # fmt: skip
    assert isinstance(result.exception, ConfigurationError)
    assert str(result.exception).startswith("--sampler scores multi-rater data; ") and "\n" not in str(result.exception)
