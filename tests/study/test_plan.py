"""The study's split, nested seeded subsets, method labels, per-run options and curve statistics."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from samia.data import build_manifest
from samia.errors import ConfigurationError, DatasetLayoutError
from samia.study import StudyMethod
from samia.study.curves import curve_table
from samia.study.plan import plan_runs, split_study


def _split(phantom_cases, seed=0, test_fraction=0.3, val_cases=1):
    return split_study(
        [c.case_id for c in build_manifest(phantom_cases)], test_fraction, val_cases, seed, "sha", phantom_cases
    )


def test_split_parts_are_disjoint_cover_the_cases_and_follow_the_seed(phantom_cases):
    ids = {case.case_id for case in build_manifest(phantom_cases)}
    split = _split(phantom_cases)
    parts = [set(split.test), set(split.val), set(split.pool)]
    assert [len(p) for p in parts] == [2, 1, 4]  # round(0.3 * 7) = 2 test cases
    assert set().union(*parts) == ids and sum(map(len, parts)) == len(ids)
    assert _split(phantom_cases) == split
    assert len({_split(phantom_cases, seed).test for seed in range(6)}) > 1


def test_subsets_are_nested_within_a_repeat_and_shared_by_the_methods(make_study, phantom_cases):
    config = make_study(methods=["decoder", "lora+decoder", "ssam"], cases=[1, 2, 4], repeats=3)
    split = _split(phantom_cases)
    runs = plan_runs(config, split)
    assert len(runs) == 3 * 3 * 3
    assert [r.repeat for r in runs] == sorted(r.repeat for r in runs)  # repeat by repeat
    by_key = {}
    for run in runs:
        assert set(run.cases) <= set(split.pool) and len(run.cases) == run.n_cases
        by_key.setdefault((run.repeat, run.n_cases), set()).add(run.cases)
    assert all(len(subsets) == 1 for subsets in by_key.values())  # every method, the same cases
    for repeat in range(3):
        small, middle, large = (set(next(iter(by_key[(repeat, n)]))) for n in (1, 2, 4))
        assert small < middle < large
    orders = [tuple(split.order(r)) for r in range(3)]
    assert all(sorted(order) == sorted(split.pool) for order in orders)
    assert orders == [tuple(split.order(r)) for r in range(3)]  # seeded: the same again
    assert len(set(orders)) > 1


def test_more_cases_than_the_pool_and_too_small_a_dataset_are_refused(make_study, phantom_cases):
    with pytest.raises(ConfigurationError, match=r"--cases 5 is more than the 4 training cases .*2 test, 1 validation"):
        plan_runs(make_study(cases=[2, 5]), _split(phantom_cases))
    with pytest.raises(DatasetLayoutError, match="has 7 cases: too few for 2 test \\+ 5 validation"):
        _split(phantom_cases, val_cases=5)


@pytest.mark.parametrize(
    ("label", "method", "decoder"),
    [("decoder", "decoder", True), ("full", "full", True), ("lora", "lora", False), ("lora+decoder", "lora", True),
     ("adapter+decoder", "adapter", True), ("ssam", "ssam", False), ("ssam+decoder", "ssam", True)],
)  # fmt: skip
def test_method_labels(label, method, decoder):
    assert StudyMethod.parse(label) == StudyMethod(label, method, decoder)


@pytest.mark.parametrize(
    ("label", "message"), [("decoder+decoder", "trains the mask decoder anyway"), ("svd", "unknown")]
)
def test_bad_method_labels(label, message, make_study):
    with pytest.raises(ConfigurationError, match=message):
        make_study(methods=[label])


def test_run_options_carry_the_split_the_method_and_the_step_budget(make_study):
    config = make_study(methods=["lora+decoder"], training={"lr": 0.01, "lora_rank": 2}, steps=12)
    method = config.study_methods[0]
    run = config.run_config(method, ["a", "b", "c", "d", "e"], ["v"], "out", seed=7)
    assert (run.method, run.train_decoder, run.cases, run.val_cases, run.seed) == (
        "lora",
        True,
        list("abcde"),
        ["v"],
        7,
    )
    assert (run.training.lr, run.training.lora_rank, run.training.epochs, run.training.patience) == (
        0.01,
        2,
        math.ceil(12 / 5),
        3,
    )
    assert config.run_config(method, ["a"], ["v"], "out", 0).training.epochs == 12
    with pytest.raises(ConfigurationError, match="--steps sets each run's epochs"):
        make_study(steps=12, training={"epochs": 3})
    with pytest.raises(ConfigurationError, match="unknown training options"):
        make_study(training={"epoch": 3})


def test_curve_mean_and_interval_over_repeats():
    rng = np.random.default_rng(3)
    dice = rng.uniform(0.2, 0.9, 4)
    runs = pd.DataFrame(
        {
            "method": "decoder", "n_cases": 2, "strategy": "box", "selection": "single", "dice_mean": dice,
            "nsd_mean": dice, "train_seconds": 1.0, "peak_rss_mb": [10.0, 30.0, 20.0, 5.0], "trainable_parameters": 9,
        }
    )  # fmt: skip
    (row,) = curve_table(runs, ["decoder"]).to_dict("records")
    low, high = stats.t.interval(0.95, df=3, loc=dice.mean(), scale=stats.sem(dice))
    assert row["repeats"] == 4 and row["dice_mean"] == pytest.approx(dice.mean())
    assert (row["dice_ci_low"], row["dice_ci_high"]) == pytest.approx((low, high))
    assert row["peak_rss_mb_max"] == 30.0
    (single,) = curve_table(runs.iloc[:1], ["decoder"]).to_dict("records")
    assert math.isnan(single["dice_ci_low"]) and single["repeats"] == 1
