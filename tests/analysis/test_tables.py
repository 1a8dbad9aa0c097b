"""Tables on synthetic result tables with planted differences and correlations."""

import numpy as np
import pandas as pd
import pytest

from samia.analysis import tables
from samia.analysis.results import load_results, object_scores, prompt_key, protocol_sort
from samia.errors import InputError, MissingFileError


@pytest.fixture
def results(planted_results) -> pd.DataFrame:
    return load_results([planted_results])


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_load_labels_models_by_weights_and_concatenates_runs(planted, tmp_path, results):
    assert set(results["model_id"]) == {"tiny_sam@random", planted.fine_tuned_id}
    one = planted.write(tmp_path / "a", fine_tuned=False)
    two = planted.write(tmp_path / "b", seed=1, fine_tuned=False)
    both = load_results([one, two])
    assert set(both["run"]) == {"a", "b"} and set(both["model_id"]) == {"tiny_sam"}
    assert len(both) == 2 * len(load_results([one])) == 2 * len(load_results([one, one]))
    empty = tmp_path / "empty"
    empty.mkdir()
    planted.frame().head(0).to_parquet(empty / "results.parquet")
    with pytest.raises(MissingFileError, match="results.parquet"):
        load_results([tmp_path / "nothing"])
    with pytest.raises(InputError, match="no rows"):
        load_results([empty])


def test_object_scores_average_variants_and_keep_the_last_click(planted, results):
    scores = object_scores(results)
    per_arm = scores.groupby(["model_id", "strategy", "selection"]).size()
    assert (per_arm == planted.n_objects).all()
    raw = results[(results["model_id"] == "tiny_sam@random") & (results["selection"] == "oracle")]
    jitter = scores[
        (scores["model_id"] == "tiny_sam@random")
        & (scores["selection"] == "oracle")
        & (scores["strategy"] == "box_jitter")
    ]
    first = jitter.iloc[0]
    expected = raw[(raw["case"] == first["case"]) & (raw["strategy"] == "box_jitter")]["dice"].mean()
    assert first["dice"] == pytest.approx(expected)
    clicks = raw[(raw["case"] == first["case"]) & (raw["strategy"] == "clicks")]
    last = scores[
        (scores["case"] == first["case"])
        & (scores["strategy"] == "clicks")
        & (scores["model_id"] == "tiny_sam@random")
        & (scores["selection"] == "oracle")
    ]
    assert last["dice"].item() == pytest.approx(clicks.loc[clicks["n_clicks"].idxmax(), "dice"])
    assert prompt_key(results)[-2:] == ["n_clicks", "jitter_band"]


def test_summary_table_matches_summarize_and_adds_intervals(results):
    headline = tables.summary_table(results, tables.SUMMARY_LEVELS["headline"], _rng(), n_resamples=200)
    assert len(headline) == 2 * 4 * 3 and headline["n"].sum() == len(results)
    assert (headline["dice_ci_low"] <= headline["dice_mean"]).all() and (
        headline["dice_mean"] <= headline["dice_ci_high"]
    ).all()
    assert list(headline["strategy"].drop_duplicates()) == ["point1", "box", "box_jitter", "clicks"]  # protocol order
    assert list(headline["selection"].iloc[:3]) == ["oracle", "predicted_iou", "single"]


def test_planted_strategy_difference_is_found_and_no_difference_is_not(planted, tmp_path, results):
    comparisons = tables.strategy_comparisons(results, _rng(), n_resamples=500)
    box_vs_point = comparisons[(comparisons["a"] == "point1") & (comparisons["b"] == "box")]
    assert len(box_vs_point) == 2 * 3  # per model and selection rule
    assert (box_vs_point["n"] == planted.n_objects).all()
    assert (box_vs_point["p_value"] < 0.001).all() and (box_vs_point["p_holm"] < 0.001).all()
    assert (box_vs_point["ci_high"] < 0).all() and np.allclose(
        box_vs_point["mean_difference"], -planted.strategy_gap, atol=0.03
    )
    assert (box_vs_point["rank_biserial"] == -1).all()
    assert (comparisons["p_holm"] >= comparisons["p_value"]).all()
    null_folder = planted.write(tmp_path / "null", point1_gap=0.0, protocol=False, fine_tuned=False)
    null = tables.strategy_comparisons(load_results([null_folder]), _rng(), 500)
    assert len(null) == 3 and (null["p_value"] > 0.01).all() and ((null["ci_low"] < 0) & (null["ci_high"] > 0)).all()


def test_selection_and_model_comparisons_pair_the_same_prompts(planted, results):
    selections = tables.selection_comparisons(results, _rng(), n_resamples=200)
    oracle = selections[
        (selections["a"] == "oracle") & (selections["b"] == "predicted_iou") & (selections["strategy"] == "box_jitter")
    ]
    assert (oracle["n_pairs"] == planted.n_objects * 6).all()  # 3 bands x 2 draws per object, paired prompt by prompt
    assert (oracle["n"] == planted.n_objects).all()  # one object per case: as many cases
    assert (oracle["mean_difference"] > 0.04).all() and (oracle["p_value"] < 0.001).all()
    clicks = selections[selections["strategy"] == "clicks"]
    assert (clicks["n_pairs"] == planted.n_objects * 4).all()  # every click count is its own prompt
    models = tables.model_comparisons(results, _rng(), n_resamples=200)
    assert set(models["a"]) == {"tiny_sam@random"} and set(models["b"]) == {planted.fine_tuned_id}
    assert (
        np.allclose(models["mean_difference"], -planted.fine_tuned_gain, atol=0.01) and (models["p_holm"] < 0.001).all()
    )


def test_selection_gaps(planted, results):
    gaps = tables.selection_gaps(results)
    assert set(gaps.columns) == {"model_id", "strategy", "gap"}
    assert gaps["gap"].between(0.0, 0.1).all() and len(gaps) == 2 * planted.n_objects * (1 + 1 + 6 + 4)
    assert tables.selection_gaps(results[results["selection"] != "oracle"]).empty


def test_planted_factor_correlation(results):
    factors = tables.available_factors(results)
    assert factors == [
        "area_px",
        "area_mm2",
        "area_fraction",
        "contrast",
        "efd_order",
        "isoperimetric_ratio",
        "aspect_ratio",
        "n_components",
    ]
    correlations = tables.factor_correlations(results, factors)
    contrast = correlations[(correlations["factor"] == "contrast") & (correlations["strategy"] == "box")]
    assert len(contrast) == 2 * 3
    assert (
        (contrast["rho"] > 0.9).all() and (contrast["p_value"] < 1e-10).all() and (contrast["partial_rho"] > 0.9).all()
    )
    assert "area_fraction" in contrast["controls"].iloc[0] and "area_px" not in contrast["controls"].iloc[0]
    others = correlations[
        correlations["factor"].isin(["efd_order", "aspect_ratio"]) & (correlations["strategy"] == "box")
    ]
    assert (others["rho"].abs() < 0.5).all()
    constant = correlations[correlations["factor"] == "n_components"]
    assert constant["rho"].isna().all()
    assert tables.partial_controls("area_px", factors) == [
        "contrast",
        "efd_order",
        "isoperimetric_ratio",
        "aspect_ratio",
        "n_components",
    ]


def test_targets_rank_best_and_worst_objects(results):
    by_object = tables.summary_table(results, tables.SUMMARY_LEVELS["by_object"], _rng(), n_resamples=100)
    targets = tables.target_table(by_object, k=2)
    one = targets[
        (targets["model_id"] == "tiny_sam@random") & (targets["strategy"] == "box") & (targets["selection"] == "oracle")
    ]
    assert list(one["rank"]) == ["best 1", "best 2", "worst 1", "worst 2"]
    assert one["dice_mean"].iloc[0] == one["dice_mean"].max() and one["dice_mean"].iloc[2] == one["dice_mean"].min()


def test_protocol_sort_puts_unknown_strategies_last():
    frame = pd.DataFrame(
        {"strategy": ["zeta", "box", "point1", "alpha"], "selection": ["single", "oracle", "oracle", "x"]}
    )
    assert list(protocol_sort(frame, ["strategy"])["strategy"]) == ["point1", "box", "alpha", "zeta"]


def test_models_are_named_by_registry_name_and_checkpoint_file(phantom_2d, tmp_path):
    import torch

    from samia.evaluation import EvaluationConfig, evaluate
    from samia.models import build_model

    weights = build_model("tiny_sam").state_dict()
    files = []
    for folder, shift in (("zero_shot", 0.0), ("ft_lora", 0.01)):
        path = tmp_path / folder / "best.pt"
        path.parent.mkdir()
        torch.save({k: v + shift if v.is_floating_point() else v for k, v in weights.items()}, path)
        files.append(path)
    runs = []
    for name, checkpoint in (("bundled", None), ("zero", files[0]), ("tuned", files[1])):
        out = tmp_path / "runs" / name
        config = EvaluationConfig.from_dict(dict(
            data=str(phantom_2d), out=str(out), model="tiny_sam", strategies=["box"], selections=["oracle"],
            checkpoint=None if checkpoint is None else str(checkpoint), limit=2,
        ))  # fmt: skip
        evaluate(config)
        runs.append(out)
    results = load_results(runs)
    names = results.groupby("run")["model_id"].unique().map(list).to_dict()
    # three weights of one registry model: each named by the fewest path parts that tell its file apart
    assert names["bundled"] == ["tiny_sam (bundled)"] and names["zero"] == ["tiny_sam (zero_shot/best.pt)"]
    assert names["tuned"] == ["tiny_sam (ft_lora/best.pt)"]
    assert not results["model_id"].str.contains("@").any()
    assert set(results.loc[results["run"] == "tuned", "checkpoint"]) == {str(files[1])}
