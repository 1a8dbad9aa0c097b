"""The training loop end to end on tiny models: files, loading everywhere, resume after a kill."""

import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from samia.cli.main import app
from samia.data import build_manifest, iter_slice_items
from samia.errors import ConfigurationError
from samia.finetuning import finetune
from samia.io import read_image
from samia.models import build_model, file_sha256

runner = CliRunner()


class _Kill(Exception):
    """Stands in for SIGKILL: raised from the progress callback in the middle of an epoch."""


class _KillAt:
    def __init__(self, epoch: int, step: int) -> None:
        self.at, self.epoch, self.steps = (epoch, step), 0, 0

    def start_epoch(self, epoch: int, steps: int) -> None:
        self.epoch, self.steps = epoch, 0

    def step(self, loss: float, samples_per_s: float) -> None:
        self.steps += 1
        if (self.epoch, self.steps) == self.at:
            raise _Kill

    def end_epoch(self, record: dict) -> None:
        pass


def test_decoder_run_writes_its_files_and_the_result_loads_in_evaluate(make_config, phantom_val, assert_evaluates):
    config = make_config(val=str(phantom_val), epochs=2)
    outcome = finetune(config)
    out = outcome.out
    assert {p.name for p in out.iterdir()} >= {
        "finetune.yaml",
        "best.pt",
        "last.pt",
        "history.csv",
        "curve.png",
        "embeddings",
    }
    assert len(list((out / "embeddings").glob("[!.]*.npz"))) == 5 + 2  # every image encoded once, train and val
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert {"train_loss", "val_dice", "val_dice_box", "val_dice_point1", "samples_per_s", "peak_rss_mb", "best"} <= set(
        history
    )
    assert history["samples_per_s"].iloc[1:].gt(0).all() and history["train_loss"].iloc[1:].notna().all()
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    provenance = yaml.safe_load((out / "finetune.yaml").read_text())["provenance"]
    assert provenance["base_weights_sha256"] == "random" and len(provenance["train_data_sha256"]) == 64
    assert provenance["val_cases"] == ["phantom_000", "phantom_001"]
    decoder = sum(p.numel() for p in build_model("tiny_sam").mask_decoder.parameters())
    assert provenance["trainable_parameters"] == decoder == outcome.parameters["trainable_parameters"]
    assert 0 < provenance["trainable_share"] < 1
    meta = torch.load(out / "best.pt", weights_only=True)["finetune"]
    assert (
        meta["epoch"] == outcome.best_epoch and meta["provenance"]["val_data_sha256"] == provenance["val_data_sha256"]
    )

    assert_evaluates(outcome.best_path, phantom_val)


def test_a_killed_run_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(make_config, tmp_path):
    reference = finetune(make_config(out=str(tmp_path / "reference"), epochs=3))
    config = make_config(out=str(tmp_path / "killed"), epochs=3)
    with pytest.raises(_Kill):
        finetune(config, _KillAt(epoch=3, step=2))
    kept = pd.read_csv(tmp_path / "killed" / "history.csv")
    assert kept["epoch"].tolist() == [0, 1, 2]  # the finished epochs survived the kill
    resumed = finetune(config)
    assert resumed.history["epoch"].tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(
        resumed.history.drop(columns=["samples_per_s", "images_per_s", "seconds", "peak_rss_mb"]),
        reference.history.drop(columns=["samples_per_s", "images_per_s", "seconds", "peak_rss_mb"]),
    )
    final, expected = (torch.load(r.out / "last.pt", weights_only=True)["trainable"] for r in (resumed, reference))
    assert final.keys() == expected.keys()
    for name in expected:
        assert torch.equal(final[name], expected[name]), name
    again = finetune(config)  # a finished run returns at once, unchanged
    assert again.history["epoch"].tolist() == [0, 1, 2, 3]


def test_another_configuration_in_the_same_folder_is_refused(make_config):
    finetune(make_config(epochs=1))
    with pytest.raises(ConfigurationError, match=r"holds a different fine-tuning run \(lr: 0.001 -> 0.5\)"):
        finetune(make_config(epochs=1, lr=0.5))
    assert finetune(make_config(epochs=2)).history["epoch"].tolist() == [0, 1, 2]  # more epochs: resumed


def test_cli_trains_lora_and_segment_loads_the_adapter_file(phantom_train, tmp_path):
    out = tmp_path / "lora"
    result = runner.invoke(
        app,
        [
            "finetune",
            "--data",
            str(phantom_train),
            "--model",
            "tiny_sam",
            "--method",
            "lora",
            "--out",
            str(out),
            "--epochs",
            "1",
            "--lora-rank",
            "2",
            "--prompt",
            "box",
            "--frozen-decoder",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "best epoch" in result.output and f"--checkpoint {out / 'best.pt'}" in result.output
    _check_split_and_changes(result.output, out)
    trained, total = re.search(r"lora trained ([\d,]+) of ([\d,]+) parameters \(\d+\.\d\d %\)", result.output).groups()
    lora_weights = torch.load(out / "best.pt", weights_only=True)["weights"]  # the adapter file: LoRA only
    assert int(trained.replace(",", "")) == sum(w.numel() for w in lora_weights.values())
    assert int(trained.replace(",", "")) < int(total.replace(",", ""))
    image = sorted((phantom_train / "images").iterdir())[0]
    mask = tmp_path / "mask.png"
    result = runner.invoke(
        app,
        [
            "segment",
            str(image),
            "--model",
            "tiny_sam",
            "--checkpoint",
            str(out / "best.pt"),
            "--box",
            "5",
            "5",
            "40",
            "40",
            "--out",
            str(mask),
        ],
    )
    assert result.exit_code == 0, result.output
    assert mask.is_file()
    assert build_model("tiny_sam", out / "best.pt").weights_sha256 == file_sha256(out / "best.pt")


def test_volumes_are_used_slice_by_slice(make_config, phantom_3d):
    outcome = finetune(make_config(val=str(phantom_3d), epochs=1))
    volume = build_manifest(phantom_3d)[0]
    slices = [item for item in iter_slice_items(volume, axis=0, min_area=50) if item.objects]
    assert 1 < len(slices) < read_image(volume.image_path).shape[0]
    embedded = len(list((outcome.out / "embeddings").glob("[!.]*.npz")))
    assert embedded == 5 + len(slices)  # the 5 training images and the volume's slices holding an object
    assert outcome.history["val_dice"].notna().all()


def test_cli_trains_and_validates_on_the_named_cases_only(phantom_train, tmp_path):
    common = ["finetune", "--data", str(phantom_train), "--model", "tiny_sam", "--epochs", "1", "--prompt", "box"]
    out = tmp_path / "named"
    named = ["--case", "phantom_003", "--case", "phantom_001", "--val-case", "phantom_004"]
    result = runner.invoke(app, [*common, "--out", str(out), *named])
    assert result.exit_code == 0, result.output
    provenance = yaml.safe_load((out / "finetune.yaml").read_text())["provenance"]
    assert sorted(provenance["train_cases"]) == ["phantom_001", "phantom_003"]
    assert provenance["val_cases"] == ["phantom_004"]
    result = runner.invoke(app, [*common, "--out", str(tmp_path / "unknown"), "--case", "phantom_099"])
    assert "has no case phantom_099" in str(result.exception)


def _check_split_and_changes(output: str, out: Path) -> None:
    """The split is printed by case, and every validation metric before -> after with its sign, read
    back from history.csv and finetune.yaml (not from the printed text); a fall is said plainly."""
    record = yaml.safe_load((out / "finetune.yaml").read_text())
    provenance = record.get("provenance", record)
    train, val = provenance["train_cases"], provenance["val_cases"]
    assert f"trained on {len(train)} case" in output and f"validated on {len(val)} case" in output
    assert all(case in output for case in val)
    history = pd.read_csv(out / "history.csv")
    best = int(history.loc[history["best"].astype(bool), "epoch"].max()) if history["best"].any() else 0
    before, after = history[history["epoch"] == 0].iloc[0], history[history["epoch"] == best].iloc[0]
    fell = []
    for column in [c for c in history.columns if c.startswith("val_dice_")]:
        change = after[column] - before[column]
        assert f"{before[column]:.4f} -> {after[column]:.4f}  ({change:+.4f})" in output
        fell += [column] if change < 0 else []
    assert ("WORSE after fine-tuning" in output) == bool(fell or after["val_dice"] < before["val_dice"])
