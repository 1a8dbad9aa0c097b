import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from samia.errors import ConfigurationError
from samia.evaluate import SELECTIONS, EvaluationConfig, evaluate
from samia.io import read_image, read_label
from samia.metrics import dice

REQUIRED_COLUMNS = [
    "dataset", "case", "slice", "object", "modality", "model", "weights_sha256", "strategy", "seed",
    "selection", "dice", "iou", "hd95", "assd", "nsd", "gt_area", "pred_area", "mask_path",
]


def _config(data, out, **overrides) -> EvaluationConfig:
    values = dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box", "point1"])
    values.update(overrides)
    return EvaluationConfig(**values)


def test_rows_columns_masks_and_summary(phantom_2d, tmp_path):
    out = tmp_path / "run"
    outcome = evaluate(_config(phantom_2d, out, save_masks=True))
    results = pd.read_parquet(out / "results.parquet")
    assert set(REQUIRED_COLUMNS) <= set(results.columns)
    # 3 cases x 3 objects x 2 strategies x 3 selection rules
    assert len(results) == 3 * 3 * 2 * len(SELECTIONS) == len(outcome.results)
    assert set(results["selection"]) == set(SELECTIONS)
    assert set(results["object"]) == {"blob", "low_contrast", "vessel"}
    assert (results["slice"] == -1).all() and (results["weights_sha256"] == "random").all()
    # each saved mask is the mask the row was scored on
    for row in results.sample(6, random_state=0).itertuples():
        saved = read_label(out / row.mask_path).array > 0
        gt = read_label(row.label_path).array == row.label
        assert saved.sum() == row.pred_area
        assert dice(saved, gt) == pytest.approx(row.dice, nan_ok=True)
    # the oracle candidate is the best of the multimask candidates by construction
    oracle = results[results["selection"] == "oracle"]
    assert np.allclose(oracle["dice"], [max(c) for c in oracle["candidate_dice"]])
    predicted = results[results["selection"] == "predicted_iou"]
    assert (predicted["candidate"] == [int(np.argmax(c)) for c in predicted["candidate_predicted_iou"]]).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["n"].sum() == len(results)
    assert len(summary) == 3 * 2 * len(SELECTIONS)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["provenance"]["weights_sha256"] == "random"
    assert config["config"]["strategies"] == ["box", "point1"]
    assert pd.read_csv(out / "errors.csv").empty


def test_same_seed_same_rows_and_rerun_adds_nothing(phantom_2d, tmp_path):
    first = evaluate(_config(phantom_2d, tmp_path / "a", seed=3)).results
    second = evaluate(_config(phantom_2d, tmp_path / "b", seed=3)).results
    pd.testing.assert_frame_equal(first.drop(columns=["mask_path"]), second.drop(columns=["mask_path"]))
    again = evaluate(_config(phantom_2d, tmp_path / "a", seed=3))
    assert again.units_run == 0 and again.units_skipped == 3
    pd.testing.assert_frame_equal(again.results, first)


def test_a_different_run_is_refused_in_the_same_folder(phantom_2d, tmp_path):
    evaluate(_config(phantom_2d, tmp_path / "run", limit=1))
    with pytest.raises(ConfigurationError, match="model: 'tiny_sam' -> 'tiny_litemedsam'"):
        evaluate(_config(phantom_2d, tmp_path / "run", model="tiny_litemedsam"))
    # --limit may grow between runs: the new cases are added, the old ones kept
    grown = evaluate(_config(phantom_2d, tmp_path / "run", limit=2))
    assert grown.units_skipped == 1 and grown.units_run == 1 and grown.results["case"].nunique() == 2


def test_bad_cases_are_recorded_and_the_run_goes_on(phantom_2d, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(phantom_2d, data)
    images = sorted((data / "images").iterdir())
    masks = sorted((data / "masks").iterdir())
    images[0].write_bytes(images[0].read_bytes()[:100])  # truncated PNG
    from PIL import Image

    Image.fromarray(np.zeros((50, 60), np.uint8)).save(masks[1])  # mask of another shape
    orphan = data / "images" / "orphan.png"
    shutil.copy(images[2], orphan)  # an image without a mask
    shutil.copy(images[2], data / "images" / "empty.png")
    Image.fromarray(np.zeros(read_image(images[2]).shape, np.uint8)).save(data / "masks" / "empty.png")  # no object
    outcome = evaluate(_config(data, tmp_path / "run"))
    errors = pd.read_csv(tmp_path / "run" / "errors.csv")
    assert len(errors) == 4
    messages = " ".join(errors["message"])
    assert images[0].name in messages and "orphan.png" in messages and masks[1].name in messages
    assert "empty.png: label map has no object" in messages
    assert set(errors["error"]) == {"CorruptFileError", "GeometryMismatchError", "MissingFileError", "InvalidLabelError"}
    assert outcome.results["case"].unique().tolist() == [images[2].name.split(".")[0]]


def test_volumes_are_sliced_with_their_spacing(phantom_3d, tmp_path):
    outcome = evaluate(_config(phantom_3d, tmp_path / "run", strategies=["box"], selections=["single"]))
    results = outcome.results
    volume = read_image(results["image_path"].iloc[0])
    assert (results["slice"] >= 0).all() and results["slice"].max() < volume.shape[0]
    assert np.allclose(results["spacing_y"], volume.spacing[1]) and np.allclose(results["spacing_x"], volume.spacing[2])
    labels = read_label(results["label_path"].iloc[0]).array
    row = results.iloc[0]
    assert row["gt_area"] == int((labels[row["slice"]] == row["label"]).sum())


def test_small_objects_are_skipped_and_counted(phantom_2d, tmp_path):
    outcome = evaluate(_config(phantom_2d, tmp_path / "run", min_area=10**6))
    assert outcome.results.empty and outcome.skipped_small == 9
