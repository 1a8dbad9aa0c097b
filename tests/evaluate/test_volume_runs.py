"""``samia evaluate`` with volume strategies: one row per object, volume, strategy and selection rule
(``level = "volume"``) next to the slice rows, the same journal guarantees, and the challenge layout."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from samia.data import write_phantom_dataset
from samia.evaluation import EvaluationConfig, evaluate
from samia.volume import box3d_of_mask

VOLUME_STRATEGIES = ["box3d", "keyslice_box", "keyslice_point", "slice_boxes", "box3d_clicks"]


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """Three seeded phantom volumes (8 slices of 48 x 48, three objects each) in the MSD layout."""
    return write_phantom_dataset(
        tmp_path_factory.mktemp("volumes"), 3, np.random.default_rng(21), layout="msd", shape=(48, 48), volume_depth=8
    )


@pytest.fixture(scope="module")
def run(volumes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    config = EvaluationConfig.from_dict(
        dict(data=str(volumes), out=str(out), model="tiny_sam", strategies=["box", *VOLUME_STRATEGIES], max_clicks=2)
    )
    return evaluate(config), out


def test_volume_rows_sit_next_to_the_slice_rows(run) -> None:
    outcome, _ = run
    results = outcome.results
    assert set(results["level"]) == {"slice", "volume"}
    assert set(results.loc[results["level"] == "slice", "strategy"]) == {"box"}
    volume = results[results["level"] == "volume"]
    assert set(volume["selection"]) == {"single", "predicted_iou"}  # oracle is a slice-level rule
    objects = volume[["case", "label"]].drop_duplicates()
    static = volume[volume["strategy"] != "box3d_clicks"]
    assert len(static) == len(objects) * 4 * 2  # one row per object, strategy and selection rule
    clicks = volume[volume["strategy"] == "box3d_clicks"]
    assert sorted(set(clicks["n_clicks"])) == [0, 1, 2] and len(clicks) == len(objects) * 3 * 2
    assert (volume["slice"] == -1).all() and volume["spacing_z"].eq(3.0).all()
    assert volume["key_slice"].notna().all() and results.loc[results["level"] == "slice", "key_slice"].isna().all()
    assert not outcome.errors.shape[0]


def test_rows_record_encoder_calls_once_per_volume(run) -> None:
    outcome, _ = run
    volume = outcome.results[outcome.results["level"] == "volume"]
    for _, rows in volume.groupby("case"):
        per_strategy = rows.groupby(["strategy", "selection"])["slices_encoded"].first()
        assert 1 <= per_strategy.sum() <= 8  # every slice at most once for all strategies of the case
        assert (rows["slices_decoded"] >= 1).all()


def test_box3d_clicks_start_from_box3d_and_click_inside_the_box(run) -> None:
    outcome, _ = run
    volume = outcome.results[outcome.results["level"] == "volume"]
    start = volume[(volume["strategy"] == "box3d_clicks") & (volume["n_clicks"] == 0)].set_index(
        ["case", "label", "selection"]
    )
    box3d = volume[volume["strategy"] == "box3d"].set_index(["case", "label", "selection"])
    pd.testing.assert_series_equal(start["dice"].sort_index(), box3d["dice"].sort_index(), check_names=False)
    import json

    last = volume[(volume["strategy"] == "box3d_clicks") & (volume["n_clicks"] == 2)]
    for prompt in last["prompt"]:
        record = json.loads(prompt)
        x0, y0, z0, x1, y1, z1 = record["box3d"]
        assert all(0 <= z < 8 and c in (0, 1) for z, y, x, c in record["clicks"])


def test_dice_along_the_slices_is_recorded_by_distance_from_the_key_slice(run) -> None:
    outcome, _ = run
    row = outcome.results[(outcome.results["level"] == "volume") & (outcome.results["strategy"] == "box3d")].iloc[0]
    assert len(row["slice_offset"]) == len(row["slice_dice"]) >= 1
    assert 0.0 in list(row["slice_offset"])  # the key slice itself
    assert all(0.0 <= d <= 1.0 for d in row["slice_dice"])


def test_a_second_run_skips_every_volume(run, volumes) -> None:
    outcome, out = run
    again = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(volumes), out=str(out), model="tiny_sam", strategies=["box", *VOLUME_STRATEGIES], max_clicks=2
            )
        )
    )
    assert again.units_run == 0
    pd.testing.assert_frame_equal(again.results, outcome.results)


RUN = """
import os, signal, sys
import samia.evaluation.store as store
from samia.evaluation import EvaluationConfig, evaluate

written = []
original = store.ResultsStore.write_unit

def write_unit(self, key, rows, meta):
    original(self, key, rows, meta)
    written.append(key)
    if len(written) == 1:
        os.kill(os.getpid(), signal.SIGKILL)

store.ResultsStore.write_unit = write_unit
evaluate(EvaluationConfig.from_dict(dict(data=sys.argv[1], out=sys.argv[2], model="tiny_sam", strategies=["box3d", "keyslice_box"])))
"""


def test_a_killed_volume_run_resumes_with_every_row_once(volumes, tmp_path) -> None:
    config = dict(model="tiny_sam", strategies=["box3d", "keyslice_box"])
    reference = evaluate(EvaluationConfig.from_dict(dict(data=str(volumes), out=str(tmp_path / "reference"), **config)))
    out = tmp_path / "killed"
    assert subprocess.run([sys.executable, "-c", RUN, str(volumes), str(out)]).returncode == -9
    resumed = evaluate(EvaluationConfig.from_dict(dict(data=str(volumes), out=str(out), **config)))
    assert resumed.units_skipped == 1 and resumed.units_run == 2
    assert not resumed.results.duplicated(["case", "level", "label", "strategy", "selection"]).any()
    pd.testing.assert_frame_equal(resumed.results, reference.results)


def test_a_2d_case_under_a_volume_strategy_is_a_recorded_failure(phantom_2d, tmp_path) -> None:
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(phantom_2d), out=str(tmp_path / "out"), model="tiny_sam", strategies=["box3d"])
        )
    )
    assert len(outcome.errors) == 3 and outcome.results.empty
    assert outcome.errors["message"].str.contains("is a 2D image; the volume strategies").all()


def test_the_challenge_layout_reads_spacing_in_itk_order(tmp_path) -> None:
    from samia.data.phantoms import ellipsoid_mask

    gts = ellipsoid_mask((10, 30, 32), (5, 15, 16), (3, 8, 9)).astype(np.uint8)
    imgs = np.where(gts > 0, 200, 40).astype(np.uint8)
    folder = tmp_path / "cvpr24"
    folder.mkdir()
    np.savez(folder / "3DBox_MR_case.npz", imgs=imgs, gts=gts, spacing=np.array([0.9, 0.8, 4.0]))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(folder), out=str(tmp_path / "out"), model="tiny_sam", strategies=["box3d"])
        )
    )
    row = outcome.results.iloc[0]
    assert (row["spacing_z"], row["spacing_y"], row["spacing_x"]) == (4.0, 0.8, 0.9)  # (x, y, z) in the file
    assert row["preset"] == "passthrough"  # the challenge's imgs are already 0..255
    assert row["key_slice"] == box3d_of_mask(gts > 0).middle(0)


def test_a_label_volume_on_another_grid_fails_its_case_naming_both_files(volumes, tmp_path) -> None:
    import shutil

    import SimpleITK as sitk

    copy = tmp_path / "shifted"
    shutil.copytree(volumes, copy)
    label_path = next((copy / "labelsTr").glob("*.nii.gz"))
    label = sitk.ReadImage(str(label_path))
    label.SetOrigin(tuple(o + 5.0 for o in label.GetOrigin()))
    sitk.WriteImage(label, str(label_path))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(copy), out=str(tmp_path / "out"), model="tiny_sam", strategies=["box3d"])
        )
    )
    assert len(outcome.errors) == 1
    message = outcome.errors.iloc[0]["message"]
    assert "origin" in message and label_path.name in outcome.errors.iloc[0]["path"]
    assert outcome.results["case"].nunique() == 2  # the other volumes are evaluated


def test_a_dicom_series_folder_pairs_with_a_nifti_label(tmp_path) -> None:
    import SimpleITK as sitk
    from clinical_files import write_ct_series

    from samia.data.phantoms import ellipsoid_mask

    mask = ellipsoid_mask((8, 30, 32), (4, 15, 16), (3, 8, 9))
    root = tmp_path / "pairs"
    write_ct_series(root / "images" / "patient1", np.where(mask, 50, -800))
    series = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(root / "images" / "patient1")))
    label = sitk.GetImageFromArray(mask.astype(np.uint8))
    label.CopyInformation(series)
    (root / "masks").mkdir()
    sitk.WriteImage(label, str(root / "masks" / "patient1.nii.gz"))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(root), out=str(tmp_path / "out"), model="tiny_sam", strategies=["box3d"])
        )
    )
    assert outcome.errors.empty and len(outcome.results) == 2  # one object, two selection rules
    row = outcome.results.iloc[0]
    assert row["modality"] == "CT" and row["preset"] == "ct_soft_tissue" and row["spacing_z"] == pytest.approx(2.5)


def test_an_empty_label_volume_is_a_recorded_failure(volumes, tmp_path) -> None:
    import shutil

    import SimpleITK as sitk

    copy = tmp_path / "empty"
    shutil.copytree(volumes, copy)
    label_path = sorted((copy / "labelsTr").glob("*.nii.gz"))[0]
    label = sitk.ReadImage(str(label_path))
    empty = sitk.GetImageFromArray(np.zeros(sitk.GetArrayFromImage(label).shape, np.uint8))
    empty.CopyInformation(label)
    sitk.WriteImage(empty, str(label_path))
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(copy), out=str(tmp_path / "out"), model="tiny_sam", strategies=["box3d"])
        )
    )
    assert len(outcome.errors) == 1 and "no object (all background)" in outcome.errors.iloc[0]["message"]
    assert outcome.results["case"].nunique() == 2


def test_objects_in_chunks_give_the_same_rows_and_still_encode_each_slice_once(volumes, tmp_path) -> None:
    runs = {
        size: evaluate(
            EvaluationConfig.from_dict(
                dict(
                    data=str(volumes),
                    out=str(tmp_path / f"b{size}"),
                    model="tiny_sam",
                    strategies=["box3d", "keyslice_box"],
                    decode_batch=size,
                )
            )
        ).results  # fmt: skip
        for size in (1, 32)
    }
    key = ["case", "label", "strategy", "selection"]
    one, all_ = (runs[s].sort_values(key).reset_index(drop=True) for s in (1, 32))
    assert np.allclose(one["dice"], all_["dice"])
    # one object per run: each object's first run encodes what earlier objects left; never more than the volume
    assert (one.groupby("case")["slices_encoded"].sum() <= 8).all() and (all_["slices_encoded"] <= 8).all()
