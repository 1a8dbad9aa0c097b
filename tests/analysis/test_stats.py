"""Statistics against hand-computed answers and planted effects."""

import math

import numpy as np
import pytest
from scipy import stats

from samia.analysis.stats import bootstrap_ci, correlation, holm, paired_test, partial_spearman, rank_biserial


def test_holm_hand_computed():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03, 0.005])), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm(np.array([0.5, 0.6])), [1.0, 1.0])  # capped at 1
    adjusted = holm(np.array([0.02, np.nan, 0.01]))  # NaN is not a test: m = 2
    np.testing.assert_allclose(adjusted, [0.02, np.nan, 0.02])
    assert holm(np.array([])).shape == (0,)


def test_rank_biserial_hand_computed():
    # differences 1, -2, 3, 0: zero dropped; ranks of |d| = 1, 2, 3; R+ = 4, R- = 2 -> (4 - 2) / 6
    assert rank_biserial(np.array([1.0, -2.0, 3.0, 0.0])) == pytest.approx(1 / 3)
    assert rank_biserial(np.array([0.5, 0.1, 0.2])) == 1.0
    assert math.isnan(rank_biserial(np.zeros(3)))


def test_bootstrap_ci_contains_the_true_mean_and_handles_degenerate_samples():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(20):
        sample = rng.normal(0.6, 0.1, 80)
        low, high = bootstrap_ci(sample, rng, n_resamples=500)
        assert low < sample.mean() < high
        covered += low <= 0.6 <= high
    assert covered >= 16  # 95 % nominal coverage; 16 of 20 has probability > 0.98
    assert bootstrap_ci(np.array([0.3, 0.3, np.nan]), rng) == (0.3, 0.3)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([0.3]), rng))
    first = bootstrap_ci(np.arange(10.0), np.random.default_rng(5), n_resamples=500)
    assert first == bootstrap_ci(np.arange(10.0), np.random.default_rng(5), n_resamples=500)  # seeded


def test_paired_test_finds_a_planted_difference():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.3, 0.7, 40)
    a = b + 0.2 + rng.normal(0, 0.03, 40)
    result = paired_test(a, b, rng, n_resamples=1000)
    assert result.n == 40 and result.p_value < 0.001
    assert 0.18 < result.mean_difference < 0.22 and result.ci_low > 0 and result.ci_high < 0.25
    assert result.rank_biserial == 1.0
    assert result.p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)


def test_paired_test_without_a_difference():
    rng = np.random.default_rng(3)
    b = rng.uniform(0.3, 0.7, 40)
    a = b + rng.normal(0, 0.05, 40)
    result = paired_test(a, b, rng, n_resamples=1000)
    assert result.p_value > 0.05 and result.ci_low < 0 < result.ci_high and abs(result.rank_biserial) < 0.3
    same = paired_test(b, b, rng)
    assert same.p_value == 1.0 and same.mean_difference == 0.0 and math.isnan(same.rank_biserial)
    dropped = paired_test(np.array([0.5, np.nan, 0.7]), np.array([0.4, 0.2, np.nan]), rng)
    assert dropped.n == 1 and math.isnan(dropped.p_value)


def test_spearman_finds_a_planted_correlation():
    rng = np.random.default_rng(4)
    contrast = rng.uniform(0, 1, 60)
    dice = np.clip(0.3 + 0.6 * contrast + rng.normal(0, 0.05, 60), 0, 1)
    noise = rng.uniform(0, 1, 60)
    result = correlation(contrast, dice, noise[:, None])
    assert result.n == 60 and result.rho > 0.9 and result.p_value < 1e-10
    assert result.partial_rho > 0.9 and result.partial_p_value < 1e-10
    unrelated = correlation(noise, dice)
    assert abs(unrelated.rho) < 0.4 and unrelated.p_value > 0.001  # no planted link: far from the planted one
    assert unrelated.partial_rho == unrelated.rho  # no covariates: partial = raw


def test_partial_correlation_removes_a_confounder():
    rng = np.random.default_rng(5)
    size = rng.uniform(0, 1, 200)
    contrast = size + rng.normal(0, 0.1, 200)  # correlated with size, no effect of its own
    dice = size + rng.normal(0, 0.1, 200)
    result = correlation(contrast, dice, size[:, None])
    assert result.rho > 0.7 and result.p_value < 1e-10
    assert abs(result.partial_rho) < 0.15 and result.partial_p_value > 0.05


def test_partial_spearman_matches_a_hand_computed_residual_correlation():
    rng = np.random.default_rng(6)
    x, y, z = rng.normal(size=(3, 30))
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones(30), rz])
    ex = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    ey = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    expected = np.corrcoef(ex, ey)[0, 1]
    r, p = partial_spearman(x, y, z[:, None])
    assert r == pytest.approx(expected)
    t = expected * math.sqrt(27 / (1 - expected**2))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), 27))


def test_correlation_degenerate_inputs():
    constant = correlation(np.ones(10), np.arange(10.0))
    assert constant.n == 10 and math.isnan(constant.rho) and math.isnan(constant.partial_rho)
    short = correlation(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0]))
    assert short.n == 2 and math.isnan(short.rho)
    with_constant_covariate = correlation(np.arange(10.0), np.arange(10.0) ** 2, np.ones((10, 1)))
    assert with_constant_covariate.partial_rho == pytest.approx(1.0)


def _clustered(n_cases: int, per_case: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dice-like values whose spread is between cases (each case's objects nearly agree)."""
    rng = np.random.default_rng(seed)
    effects = rng.normal(0.6, 0.15, n_cases)
    values = np.repeat(effects, per_case) + rng.normal(0, 0.01, n_cases * per_case)
    return values, np.repeat([f"case_{i}" for i in range(n_cases)], per_case)


def test_the_interval_resamples_cases_not_objects():
    values, cases = _clustered(n_cases=6, per_case=40)
    rng = np.random.default_rng(1)
    by_case = bootstrap_ci(values, rng, n_resamples=2000, cases=cases)
    by_row = bootstrap_ci(values, rng, n_resamples=2000)
    # independently: a percentile cluster bootstrap of the pooled mean, resampling whole cases
    labels = np.unique(cases)
    groups = [values[cases == label] for label in labels]
    draws = np.random.default_rng(2).integers(0, len(labels), (4000, len(labels)))
    pooled = [np.concatenate([groups[i] for i in draw]).mean() for draw in draws]
    low, high = np.percentile(pooled, [2.5, 97.5])
    assert by_case[1] - by_case[0] == pytest.approx(high - low, rel=0.35)
    assert by_case[1] - by_case[0] > 4 * (by_row[1] - by_row[0])  # 240 objects are not 240 cases
    assert all(math.isnan(v) for v in bootstrap_ci(values[:40], rng, cases=cases[:40]))  # one case
    singles = np.arange(10.0)
    assert bootstrap_ci(singles, np.random.default_rng(5), n_resamples=500, cases=singles.astype(str)) == (
        bootstrap_ci(singles, np.random.default_rng(5), n_resamples=500)
    )


def test_paired_tests_count_cases_and_withhold_p_below_ten():
    import pandas as pd
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(3)
    for n_cases, withheld in ((9, True), (10, False)):
        a, cases = _clustered(n_cases, per_case=5, seed=n_cases)
        b = a - 0.05 + rng.normal(0, 0.02, len(a))
        result = paired_test(a, b, rng, n_resamples=500, cases=cases)
        assert result.n == n_cases and result.n_pairs == 5 * n_cases and result.p_withheld is withheld
        per_case = pd.DataFrame({"a": a, "b": b, "case": cases}).groupby("case").mean()
        assert result.mean_difference == pytest.approx((per_case["a"] - per_case["b"]).mean())
        if withheld:
            assert math.isnan(result.p_value)
        else:
            assert result.p_value == pytest.approx(scipy_stats.wilcoxon(per_case["a"], per_case["b"]).pvalue)
