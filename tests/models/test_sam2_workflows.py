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


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory):
    """tiny_sam2 on two phantom volumes, each volume strategy by both engines."""
    import numpy as np

    from samia.data import write_phantom_dataset
    from samia.evaluation import EvaluationConfig, evaluate

    data = write_phantom_dataset(
        tmp_path_factory.mktemp("volumes"), 2, np.random.default_rng(5), layout="msd", shape=(48, 48), volume_depth=8
    )
    strategies = ["box3d", "box3d_memory", "keyslice_point_memory", "box3d_clicks", "box3d_clicks_memory"]
    out = tmp_path_factory.mktemp("run") / "out"
    config = EvaluationConfig.from_dict(
        dict(data=str(data), out=str(out), model="tiny_sam2", strategies=strategies, max_clicks=1)
    )
    return evaluate(config), data, out


def test_evaluate_compares_memory_tracking_with_the_slice_engine(volume_run) -> None:
    outcome, _, _ = volume_run
    rows = outcome.results
    assert not outcome.errors.shape[0]
    memory = rows[rows["strategy"].str.endswith("_memory")]
    assert set(memory["selection"]) == {"single"}  # the tracker has no mask-selection rule
    objects = rows[["case", "label"]].drop_duplicates()
    for strategy in ("box3d", "box3d_memory", "keyslice_point_memory"):
        assert len(rows[rows["strategy"] == strategy].drop_duplicates(["case", "label", "selection"])) == len(
            objects
        ) * (2 if strategy == "box3d" else 1)
    clicks = rows[rows["strategy"] == "box3d_clicks_memory"]
    assert sorted(set(clicks["n_clicks"])) == [0, 1]
    for _, case_rows in rows.groupby("case"):  # one encoder call per slice for both engines together
        assert case_rows.groupby(["strategy", "selection"])["slices_encoded"].first().sum() <= 8


def test_a_memory_row_scores_what_memory_tracking_returns(volume_run) -> None:
    import numpy as np

    from samia.io import read_image, read_label
    from samia.metrics import dice
    from samia.predictor import SamiaPredictor
    from samia.transforms import preset_for
    from samia.volume import VolumePrompt, VolumeSession, box3d_of_mask
    from samia.volume.memory import segment_volume_with_memory

    outcome, data, _ = volume_run
    row = outcome.results[outcome.results["strategy"] == "box3d_memory"].iloc[0]
    image = read_image(data / "imagesTr" / f"{row['case']}.nii.gz")
    truth = read_label(data / "labelsTr" / f"{row['case']}.nii.gz").array == int(row["label"])
    with VolumeSession(SamiaPredictor(build_model("tiny_sam2")), image, preset_for(image)) as session:
        answer = segment_volume_with_memory(session, [VolumePrompt(box3d=box3d_of_mask(truth))]).objects[0]
    assert row["dice"] == pytest.approx(dice(answer.mask, truth))
    assert np.isfinite(row["dice"])


def test_memory_strategies_refuse_other_models_in_one_line(cli, tmp_path) -> None:
    code, _, stderr = cli(
        "evaluate", "--data", DATA, "--model", "tiny_sam", "--out", tmp_path / "run", "--strategy", "box3d_memory"
    )
    assert code == 2
    assert stderr.strip().splitlines() == [
        "error: strategy box3d_memory: memory tracking needs a SAM 2 family model (sam2.1_*, medsam2, tiny_sam2), "
        "not tiny_sam"
    ]
