"""The papers' protocol end to end: every strategy, selection rules, prompts file and replay."""

import json

import numpy as np
import pandas as pd
import pytest

from samia.evaluation import EvaluationConfig, evaluate

ALL = ["everything", "point1", "point5", "point5_neg5", "box", "box_point1", "box_jitter", "point_jitter", "clicks"]
SETTINGS = dict(
    model="tiny_sam",
    limit=1,
    max_clicks=3,
    points_per_side=4,
    jitter_repeats=2,
    jitter_bands=["0-10", "10-20"],
    pred_iou_thresh=0.0,
    stability_score_thresh=0.0,
)


@pytest.fixture(scope="module")
def protocol_run(phantom_2d, tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol") / "run"
    return out, evaluate(
        EvaluationConfig.from_dict(dict(data=str(phantom_2d), out=str(out), strategies=ALL, **SETTINGS))
    )


def test_every_strategy_gives_its_rows(protocol_run):
    out, outcome = protocol_run
    results = outcome.results
    counts = results.groupby("strategy").size()
    n_objects, n_selections = 3, 3
    for single in ("point1", "point5", "point5_neg5", "box", "box_point1"):
        assert counts[single] == n_objects * n_selections
    assert counts["box_jitter"] == counts["point_jitter"] == n_objects * 2 * 2 * n_selections
    assert counts["clicks"] == n_objects * 3 * n_selections
    assert counts["everything"] == n_objects
    clicks = results[results["strategy"] == "clicks"]
    assert sorted(clicks["n_clicks"].unique()) == [1, 2, 3]
    assert (results.loc[results["strategy"] != "clicks", "n_clicks"] == 0).all()
    jitter = results[results["strategy"] == "box_jitter"]
    assert set(jitter["jitter_band"]) == {"0-10px", "10-20px"} and jitter["jitter_offset_px"].notna().all()
    everything = results[results["strategy"] == "everything"]
    assert (everything["selection"] == "oracle").all() and (everything["n_generated_masks"] >= 0).all()
    assert (everything["n_generated_masks"].iloc[0] > 0) and everything["best_match_iou"].between(0, 1).all()
    assert not outcome.instances.empty and set(outcome.instances.columns) >= {"tp", "fp", "fn", "f1"}
    assert (out / "everything_instances.csv").is_file()
    # the factors of each object are in every row
    for factor in ("area_px", "contrast", "efd_order", "isoperimetric_ratio", "aspect_ratio", "n_components"):
        assert results[factor].notna().all()
    point5 = results[(results["strategy"] == "point5_neg5")].iloc[0]
    assert json.loads(point5["prompt"])["labels"] == [1] * 5 + [0] * 5


def test_replaying_the_prompts_file_gives_identical_rows(protocol_run, phantom_2d, tmp_path):
    out, outcome = protocol_run
    replay = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(phantom_2d),
                out=str(tmp_path / "replay"),
                strategies=[],
                prompts_file=str(out / "prompts.jsonl"),
                **SETTINGS,
            )
        )
    )
    expected = outcome.results[outcome.results["strategy"] != "everything"].reset_index(drop=True)
    assert set(replay.results["strategy"]) == set(ALL) - {"everything"}
    lists = ["candidate_dice", "candidate_predicted_iou"]  # decoded in other batches: float noise
    pd.testing.assert_frame_equal(
        replay.results.drop(columns=lists), expected.drop(columns=lists), check_exact=False, rtol=1e-5
    )
    for column in lists:
        for ours, theirs in zip(replay.results[column], expected[column]):
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_a_persons_prompts_file_is_evaluated(phantom_2d, tmp_path):
    prompts = tmp_path / "drawn.jsonl"
    record = {
        "case": "phantom_000",
        "slice": -1,
        "label": 1,
        "component": -1,
        "strategy": "box",
        "variant": 0,
        "selection": None,
        "points": None,
        "labels": None,
        "box": [5, 5, 60, 60],
        "meta": {"annotator": "A"},
    }
    prompts.write_text(json.dumps(record) + "\n")
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(phantom_2d),
                out=str(tmp_path / "run"),
                model="tiny_sam",
                strategies=[],
                prompts_file=str(prompts),
            )
        )
    )
    results = outcome.results
    assert len(results) == 3 and set(results["object"]) == {"blob"}
    assert json.loads(results["prompt"].iloc[0])["box"] == [5, 5, 60, 60]
    assert json.loads(results["prompt_meta"].iloc[0]) == {"annotator": "A"}


def test_everything_mode_that_finds_nothing_scores_zero(phantom_2d, tmp_path):
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(phantom_2d),
                out=str(tmp_path / "run"),
                model="tiny_sam",
                limit=1,
                strategies=["everything"],
                points_per_side=2,
                pred_iou_thresh=10.0,
            )
        )
    )
    assert outcome.errors.empty
    results = outcome.results
    assert len(results) == 3 and (results["n_generated_masks"] == 0).all() and (results["dice"] == 0).all()
    assert outcome.instances["f1"].iloc[0] == 0 and outcome.instances["fn"].iloc[0] == 3
