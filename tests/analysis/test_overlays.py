"""Overlays re-read exactly what a result row was computed from."""

import json

import numpy as np
import pandas as pd
import pytest

from samia.analysis.overlays import case_title, extreme_cases, load_case_view, overlay_figure
from samia.analysis.plots import figure_png
from samia.analysis.results import load_results
from samia.errors import InputError, MissingFileError
from samia.evaluation import EvaluationConfig, evaluate


def test_a_volume_row_with_components_comes_back_with_its_masks(phantom_3d, tmp_path):
    out = tmp_path / "run3d"
    evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(phantom_3d),
                out=str(out),
                model="tiny_sam",
                strategies=["point1"],
                selections=["single"],
                connected_components=True,
                save_masks=True,
                limit=1,
                min_area=20,
            )
        )
    )
    results = load_results([out])
    assert (results["slice"] >= 0).all() and (results["component"] >= 0).all()
    for _, row in results.sample(4, random_state=0).iterrows():
        view = load_case_view(row)
        assert view.ground_truth.sum() == row["gt_area"] and view.prediction.sum() == row["pred_area"]
        assert int(np.sum(view.ground_truth & view.prediction)) == row["tp"]
        assert view.rgb.dtype == np.uint8 and view.rgb.shape == (*view.ground_truth.shape, 3)
        np.testing.assert_allclose(view.prompt.points, json.loads(row["prompt"])["points"])
    broken = results.iloc[0].copy()
    broken["component"] = 99
    with pytest.raises(InputError, match="no component 99"):
        load_case_view(broken)
    broken["slice"] = 999
    with pytest.raises(InputError, match="no slice 999"):
        load_case_view(broken)


def test_best_and_worst_overlays_draw_the_prediction_without_saved_mask_files(phantom_2d, tmp_path):
    """The row's own mask (mask_rle) is what it was scored on: area, true positives and Dice agree."""
    out = tmp_path / "run"
    config = dict(data=str(phantom_2d), out=str(out), model="tiny_sam", strategies=["box"], selections=["single"])
    evaluate(EvaluationConfig.from_dict(config))
    assert not (out / "masks").exists()
    chosen = extreme_cases(load_results([out]), 1)
    assert list(chosen["extreme"]) == ["best", "worst"]
    for _, row in chosen.iterrows():
        view = load_case_view(row)
        assert view.prediction is not None and view.prediction.sum() == row["pred_area"]
        assert int(np.sum(view.ground_truth & view.prediction)) == row["tp"]
        assert "prediction not kept" not in case_title(row, has_prediction=True)


def test_extreme_cases_are_the_best_and_worst_of_each_model_and_strategy(planted_results):
    results = load_results([planted_results])
    oracle = results[results["selection"] == "oracle"]
    chosen = extreme_cases(oracle, 2)
    assert len(chosen) == 2 * 4 * 2 * 2
    for (model, strategy), group in oracle.groupby(["model_id", "strategy"]):
        picked = chosen[(chosen["model_id"] == model) & (chosen["strategy"] == strategy)]
        assert sorted(picked.loc[picked["extreme"] == "best", "dice"]) == sorted(group["dice"].nlargest(2))
        assert sorted(picked.loc[picked["extreme"] == "worst", "dice"]) == sorted(group["dice"].nsmallest(2))
    pd.testing.assert_frame_equal(chosen, extreme_cases(oracle, 2))


def test_overlay_of_an_earlier_samias_row_without_a_mask_and_with_a_missing_file(planted_results):
    row = load_results([planted_results]).iloc[0]
    view = load_case_view(row)
    assert view.prediction is None and view.prompt.box is not None
    title = case_title(row, has_prediction=False)
    assert "prediction not kept" in title and row["object"] in title
    assert figure_png(overlay_figure(view, title))[:8] == b"\x89PNG\r\n\x1a\n"
    row["image_path"] = "/nonexistent/image.png"
    with pytest.raises(MissingFileError):
        load_case_view(row)
