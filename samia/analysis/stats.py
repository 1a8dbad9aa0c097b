"""The statistics of the report: bootstrap intervals, paired tests, multiple testing, rank correlations.

Everything scipy provides comes from scipy (``bootstrap``, ``wilcoxon``, ``spearmanr``,
``rankdata``, the t distribution); written here are only what it lacks: Holm's step-down
adjustment, the matched-pairs rank-biserial effect size and the partial Spearman correlation.
NaN inputs are dropped (pairwise for paired data) and the remaining ``n`` is reported.

The unit of inference is the *case* (a patient, an image, a volume), never a slice or an object:
objects of one case are not independent. Given each value's case, :func:`bootstrap_ci` resamples
whole cases (a cluster bootstrap of the pooled mean) and :func:`paired_test` averages each case's
pairs before testing, so ``n`` counts cases; below :data:`MIN_CASES_FOR_P` paired cases no p-value
is given (``p_withheld``): a signed-rank test on a handful of cases says nothing a reader should act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
BCA_MAX_N = 5000
"""Above this many values the percentile interval is used: BCa's jackknife costs ``n**2`` operations,
and its corrections vanish for large samples."""
BATCH_VALUES = 2**22
"""Resampled values held in memory at once (``batch`` of ``scipy.stats.bootstrap``)."""
MIN_CASES_FOR_P = 10
"""Fewer paired cases than this: the p-value is withheld (NaN, ``p_withheld``)."""


def _case_codes(cases: np.ndarray | None, count: int) -> np.ndarray:
    """``(count,)`` int codes of each value's case (each value its own case when ``cases`` is None)."""
    if cases is None:
        return np.arange(count)
    cases = np.asarray(cases)
    if len(cases) != count:
        raise ValueError(f"{len(cases)} case labels for {count} values")
    return np.unique(cases.astype(str), return_inverse=True)[1].reshape(-1)


def case_means(values: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """``(n_cases,)`` the mean of ``values`` within each case (NaN values left out; cases in
    sorted order of their labels)."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    codes = _case_codes(np.asarray(cases)[keep], int(keep.sum()))
    return np.bincount(codes, weights=values[keep]) / np.bincount(codes)


def _pooled_mean(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return sums.sum(axis=axis) / counts.sum(axis=axis)


def bootstrap_ci(
    values: np.ndarray,
    rng: np.random.Generator,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    cases: np.ndarray | None = None,
) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) bootstrap interval of the mean (``scipy.stats.bootstrap``).

    With ``cases``, whole cases are resampled (a cluster bootstrap): the statistic is the pooled
    mean of the resampled cases' values, so objects or slices of one case move together and the
    interval reflects how many cases there are, not how many values. Samples of more than
    :data:`BCA_MAX_N` cases get the percentile interval.

    Args:
        values: ``(n,)`` floats; NaN values are dropped.
        rng: the resampling generator (seeded by the caller for reproducible reports).
        confidence: coverage of the interval.
        n_resamples: bootstrap resamples.
        cases: ``(n,)`` the case of each value (any labels); None: each value is its own case.

    Returns:
        ``(low, high)``; ``(NaN, NaN)`` for fewer than 2 cases; ``(v, v)`` when all values equal ``v``
        (the interval of a degenerate sample is the point itself).
    """
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    codes = _case_codes(None if cases is None else np.asarray(cases)[keep], int(keep.sum()))
    values = values[keep]
    sums, counts = np.bincount(codes, weights=values), np.bincount(codes).astype(np.float64)
    if len(sums) < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    method = "BCa" if len(sums) <= BCA_MAX_N else "percentile"
    batch = max(1, BATCH_VALUES // len(sums))
    samples: tuple[np.ndarray, ...]
    statistic: Callable[..., Any]
    if np.all(counts == 1):
        samples, statistic, paired = (sums,), np.mean, False
    else:
        samples, statistic, paired = (sums, counts), _pooled_mean, True
    result = stats.bootstrap(
        samples,
        statistic,
        paired=paired,
        n_resamples=n_resamples,
        batch=batch,
        confidence_level=confidence,
        method=method,
        rng=rng,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    With the ``m`` finite p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted value
    of ``p_(i)`` is ``max_{j <= i} min(1, (m - j + 1) p_(j))`` (Holm, Scand J Stat 6:65-70, 1979).

    Args:
        pvalues: ``(k,)`` p-values; NaN entries (tests that could not be run) are not counted in
            ``m`` and stay NaN.

    Returns:
        ``(k,)`` float64 adjusted p-values in the input order.
    """
    pvalues = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full_like(pvalues, np.nan)
    finite = np.flatnonzero(~np.isnan(pvalues))
    order = finite[np.argsort(pvalues[finite], kind="stable")]
    m = len(order)
    stepped = np.minimum(1.0, (m - np.arange(m)) * pvalues[order])
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (Kerby, Compr Psychol 3, 2014).

    ``(R+ - R-) / (R+ + R-)`` where ``R+`` / ``R-`` are the sums of the ranks of ``|d|`` over the
    positive / negative non-zero differences (zeros dropped, as in Wilcoxon's test): +1 when every
    pair favours the first sample, -1 when every pair favours the second; NaN without a non-zero
    difference.
    """
    differences = np.asarray(differences, dtype=np.float64)
    differences = differences[differences != 0]
    if not len(differences):
        return math.nan
    ranks = stats.rankdata(np.abs(differences))
    positive, negative = ranks[differences > 0].sum(), ranks[differences < 0].sum()
    return float((positive - negative) / (positive + negative))


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of ``a`` against ``b`` (difference = ``a - b``), over cases.

    Attributes:
        n: cases with at least one pair (the unit of the test, the interval and the means).
        n_pairs: pairs with both values present (objects or prompts), averaged within each case.
        mean_a, mean_b: the means over cases of each case's mean.
        mean_difference: mean of the cases' ``a - b``; ``ci_low`` / ``ci_high`` its BCa bootstrap
            interval over cases.
        median_difference: median of the cases' ``a - b``.
        statistic, p_value: Wilcoxon signed-rank test over cases (two-sided, zero differences
            dropped; exact for small samples without ties, normal approximation otherwise);
            ``p_value`` is 1 when every difference is 0, NaN for fewer than 2 cases, and NaN with
            ``p_withheld`` for fewer than :data:`MIN_CASES_FOR_P`.
        p_withheld: the p-value was not computed: too few cases.
        rank_biserial: the effect size over cases (:func:`rank_biserial`).
    """

    n: int
    n_pairs: int
    mean_a: float
    mean_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    median_difference: float
    statistic: float
    p_value: float
    p_withheld: bool
    rank_biserial: float

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = N_RESAMPLES,
    cases: np.ndarray | None = None,
) -> PairedTest:
    """Wilcoxon signed-rank test, effect size and bootstrap interval of ``a - b`` over cases (see
    :class:`PairedTest`).

    Args:
        a, b: ``(n,)`` paired values (e.g. the Dice of two strategies on the same objects); pairs
            with a NaN on either side are dropped.
        rng: the bootstrap generator.
        cases: ``(n,)`` the case of each pair: pairs of one case are averaged into one (the unit
            is the case). None: each pair is its own case.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    n_pairs = int(keep.sum())
    if cases is not None:
        labels = np.asarray(cases)[keep]
        a, b = case_means(a[keep], labels), case_means(b[keep], labels)
    else:
        a, b = a[keep], b[keep]
    differences = a - b
    n = len(differences)
    withheld = 0 < n < MIN_CASES_FOR_P
    if n < 2 or withheld:
        statistic = p_value = math.nan
    elif not np.any(differences):
        statistic, p_value = 0.0, 1.0
    else:
        result = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    ci_low, ci_high = bootstrap_ci(differences, rng, n_resamples=n_resamples)
    return PairedTest(
        n=n,
        n_pairs=n_pairs,
        mean_a=float(a.mean()) if n else math.nan,
        mean_b=float(b.mean()) if n else math.nan,
        mean_difference=float(differences.mean()) if n else math.nan,
        ci_low=ci_low,
        ci_high=ci_high,
        median_difference=float(np.median(differences)) if n else math.nan,
        statistic=statistic,
        p_value=p_value,
        p_withheld=withheld,
        rank_biserial=rank_biserial(differences),
    )


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation of ``x`` and ``y``, raw and partial.

    Attributes:
        n: observations with ``x``, ``y`` and every covariate present.
        rho, p_value: ``scipy.stats.spearmanr`` (two-sided), NaN when ``n < 3`` or a variable is constant.
        partial_rho, partial_p_value: the same with the covariates' ranks partialled out
            (:func:`partial_spearman`); equal to ``rho`` / ``p_value`` without covariates.
    """

    n: int
    rho: float
    p_value: float
    partial_rho: float
    partial_p_value: float

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def partial_spearman(x: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> tuple[float, float]:
    """Partial Spearman correlation of ``x`` and ``y`` given ``covariates``, and its two-sided p-value.

    All variables are ranked (``scipy.stats.rankdata``, average ties); the ranks of ``x`` and ``y``
    are regressed by least squares on an intercept and the covariates' ranks, and the Pearson
    correlation ``r`` of the two residuals is the partial correlation. Its p-value uses
    ``t = r sqrt(df / (1 - r**2))`` with ``df = n - 2 - k`` (``k`` covariates).

    Args:
        x, y: ``(n,)`` values without NaN.
        covariates: ``(n, k)`` values without NaN; constant columns are left out (they explain
            nothing) and not counted in ``k``.

    Returns:
        ``(r, p)``; NaN when ``df < 1`` or a residual is constant.
    """
    columns = [c for c in np.asarray(covariates, dtype=np.float64).T if not _is_constant(c)]
    design = np.column_stack([np.ones(len(x))] + [stats.rankdata(c) for c in columns])
    df = len(x) - 2 - len(columns)
    if df < 1:
        return math.nan, math.nan
    residuals = []
    for variable in (x, y):
        ranks = stats.rankdata(variable)
        residual = ranks - design @ np.linalg.lstsq(design, ranks, rcond=None)[0]
        if np.allclose(residual, 0.0, atol=1e-9 * len(x)):
            return math.nan, math.nan
        residuals.append(residual)
    r = float(np.clip(stats.pearsonr(*residuals).statistic, -1.0, 1.0))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt(df / (1.0 - r**2))
    return r, float(2.0 * stats.t.sf(abs(t), df))


def correlation(x: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None) -> Correlation:
    """Spearman correlation of ``x`` and ``y``, and its partial version given ``covariates``.

    Args:
        x, y: ``(n,)`` floats.
        covariates: ``(n, k)`` floats or None; rows with a NaN anywhere are dropped for both the raw
            and the partial correlation, so they describe the same observations.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    others = (
        np.empty((len(x), 0)) if covariates is None else np.asarray(covariates, dtype=np.float64).reshape(len(x), -1)
    )
    keep = ~(np.isnan(x) | np.isnan(y) | np.isnan(others).any(axis=1))
    x, y, others = x[keep], y[keep], others[keep]
    n = len(x)
    if n < 3 or _is_constant(x) or _is_constant(y):
        return Correlation(n, math.nan, math.nan, math.nan, math.nan)
    result = stats.spearmanr(x, y)
    rho, p_value = float(result.statistic), float(result.pvalue)
    partial_rho, partial_p = partial_spearman(x, y, others) if others.shape[1] else (rho, p_value)
    return Correlation(n, rho, p_value, partial_rho, partial_p)
