import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from pycocotools import mask as coco_mask

from samia.errors import ConfigurationError
from samia.evaluation import SELECTIONS, EvaluationConfig, evaluate
from samia.io import read_image, read_label
from samia.metrics import dice

REQUIRED_COLUMNS = [
    "dataset",
    "case",
    "slice",
    "object",
    "modality",
    "model",
    "weights_sha256",
    "strategy",
    "seed",
    "selection",
    "dice",
    "iou",
    "hd95",
    "assd",
    "nsd",
    "gt_area",
    "pred_area",
    "mask_path",
]


def _config(data, out, **overrides) -> EvaluationConfig:
    values = dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box", "point1"])
    values.update(overrides)
    return EvaluationConfig.from_dict(dict(**values))


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
    # each saved mask, and the row's own (COCO RLE, read back with pycocotools), is the mask it was scored on
    for row in results.sample(6, random_state=0).itertuples():
        saved = read_label(out / row.mask_path).array > 0
        gt = read_label(row.label_path).array == row.label
        assert saved.sum() == row.pred_area
        assert dice(saved, gt) == pytest.approx(row.dice, nan_ok=True)
        record = json.loads(row.mask_rle)
        kept = coco_mask.decode({"size": record["size"], "counts": record["counts"].encode()}).astype(bool)
        np.testing.assert_array_equal(kept, saved)
        assert int(coco_mask.area({"size": record["size"], "counts": record["counts"].encode()})) == row.pred_area
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
    assert config["provenance"]["weights_verification"] == "random"
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
    assert set(errors["error"]) == {
        "CorruptFileError",
        "GeometryMismatchError",
        "MissingMaskError",  # an image without its mask
        "InvalidLabelError",
    }
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


def test_anisotropic_in_plane_spacing_reaches_the_metrics_in_y_x_order(tmp_path):
    """A 2D NIfTI with 0.5 mm rows and 2.0 mm columns: distances in the rows use (y, x) = (0.5, 2.0)."""
    import SimpleITK as sitk

    from samia.io import read_label
    from samia.metrics import hd95

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    rng = np.random.default_rng(5)
    image = rng.normal(0, 1, (60, 40)).astype(np.float32)
    label = np.zeros((60, 40), np.uint8)
    label[10:45, 8:30] = 1
    image[label == 1] += 4
    for array, path in ((image, data / "images" / "case.nii.gz"), (label, data / "masks" / "case.nii.gz")):
        written = sitk.GetImageFromArray(array)
        written.SetSpacing((2.0, 0.5))  # SimpleITK spacing is (x, y)
        sitk.WriteImage(written, str(path))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(data),
                out=str(tmp_path / "run"),
                model="tiny_sam",
                strategies=["box"],
                selections=["single"],
                save_masks=True,
            )
        )
    )
    (row,) = outcome.results.itertuples()
    assert (row.spacing_y, row.spacing_x) == (0.5, 2.0)
    predicted = read_label(tmp_path / "run" / row.mask_path).array.astype(bool)
    truth = label.astype(bool)
    right, reversed_ = hd95(predicted, truth, (0.5, 2.0)), hd95(predicted, truth, (2.0, 0.5))
    assert right != pytest.approx(reversed_)
    assert row.hd95 == pytest.approx(right)


def test_rows_follow_the_declared_schema_and_an_empty_unit_is_an_empty_table_of_it(phantom_2d, tmp_path):
    import pyarrow.parquet as pq

    from samia.evaluation.schema import RESULT_SCHEMA
    from samia.evaluation.store import ResultsStore

    out = tmp_path / "run"
    evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(phantom_2d), out=str(out), model="tiny_sam", strategies=["box"], limit=1)
        )
    )
    assert pq.read_schema(out / "results.parquet").remove_metadata().equals(RESULT_SCHEMA)
    store = ResultsStore(tmp_path / "empty")
    store.write_unit("nothing|-1", [], {"n_objects": 0})
    ((table, meta),) = store.unit_tables()
    assert table.num_rows == 0 and table.schema.remove_metadata().equals(RESULT_SCHEMA) and meta["n_objects"] == 0
    results, _ = store.consolidate(["case"])
    assert list(results.columns) == RESULT_SCHEMA.names and results.empty
    with pytest.raises(ValueError, match="does not match the schema"):
        store.write_unit("bad|-1", [{"case": "x"}], {})


def test_a_listing_error_names_the_case_and_goes_away_once_fixed(phantom_2d, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(phantom_2d, data)
    image = sorted((data / "images").iterdir())[0]
    mask = data / "masks" / image.name
    kept = mask.read_bytes()
    mask.unlink()  # an image without its mask
    evaluate(_config(data, tmp_path / "run"))
    errors = pd.read_csv(tmp_path / "run" / "errors.csv")
    case = image.name.split(".")[0]
    assert errors[["case", "error"]].values.tolist() == [[case, "MissingMaskError"]]  # the case, not a file name
    assert str(image) in errors["message"].iloc[0]
    mask.write_bytes(kept)  # fixed: the next run evaluates the case and the error is gone
    again = evaluate(_config(data, tmp_path / "run"))
    assert pd.read_csv(tmp_path / "run" / "errors.csv").empty and case in set(again.results["case"])
