"""A SAM 2 model goes through samia's 2D workflows as any SAM 1 model does: evaluate with static,
jittered, click and everything strategies (both mask-selection rules), and decoder fine-tuning whose
checkpoint loads back. Tiny seeded random weights (``tiny_sam2``), the bundled 2D sample."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("sam2", reason="samia[sam2] is not installed")

from samia.cli.main import app
from samia.data.samples import sample_dataset_path
from samia.models import build_model

DATA = sample_dataset_path("colin27_aal_2d")


def test_evaluate_runs_every_2d_strategy_with_sam2(tmp_path) -> None:
    strategies = ["box", "point1", "point5_neg5", "box_jitter", "clicks", "everything"]
    arguments = ["evaluate", "--data", str(DATA), "--model", "tiny_sam2", "--out", str(tmp_path / "run")]
    arguments += [part for name in strategies for part in ("--strategy", name)]
    arguments += ["--jitter-repeats", "1", "--max-clicks", "2", "--case", "colin27_axial_025"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(strategies) - {"everything"} <= set(rows["strategy"])
    assert {"single", "predicted_iou"} <= set(rows["selection"]) and rows["dice"].notna().all()


def test_decoder_finetuning_of_sam2_loads_back(tmp_path) -> None:
    out = tmp_path / "finetune"
    arguments = ["finetune", "--data", str(DATA), "--out", str(out), "--model", "tiny_sam2"]
    result = CliRunner().invoke(app, [*arguments, "--method", "decoder", "--epochs", "1", "--val-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    tuned = build_model("tiny_sam2", out / "best.pt")
    assert tuned.weights_sha256 != "random" and type(tuned).__name__ == "Sam2Segmenter"
