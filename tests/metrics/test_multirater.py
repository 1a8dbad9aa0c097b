"""Multi-rater and sample-distribution metrics: hand-computable cases, and comparisons with
independent re-expressions: PHiSeg's ``generalised_energy_distance`` (``utils.py`` of
baumgach/PHiSeg-code, transcribed below for one foreground label, medpy's ``jc`` written out), a
brute-force search over every matching for the Hungarian-matched IoU, and a per-pixel loop for the
calibration error."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from samia.errors import ConfigurationError
from samia.metrics.multirater import (
    best_match_dice,
    expected_calibration_error,
    generalised_energy_distance,
    hungarian_matched_iou,
    inter_rater_dice,
    majority_vote,
    object_scores,
    pairwise_iou,
    sample_diversity,
    staple,
    uncertainty_agreement,
)


def _phiseg_ged(sample_arr: np.ndarray, gt_arr: np.ndarray) -> float:
    """PHiSeg's generalised_energy_distance with nlabels=1, label_range=[1] (foreground only)."""

    def jc(a: np.ndarray, b: np.ndarray) -> float:  # medpy.metric.jc
        a, b = a.astype(bool), b.astype(bool)
        return float(np.count_nonzero(a & b)) / float(np.count_nonzero(a | b))

    def dist_fct(m1: np.ndarray, m2: np.ndarray) -> float:
        per_label_iou = []
        for lbl in [1]:
            m1_bin, m2_bin = (m1 == lbl) * 1, (m2 == lbl) * 1
            if np.sum(m1_bin) == 0 and np.sum(m2_bin) == 0:
                per_label_iou.append(1)
            elif np.sum(m1_bin) > 0 and np.sum(m2_bin) == 0 or np.sum(m1_bin) == 0 and np.sum(m2_bin) > 0:
                per_label_iou.append(0)
            else:
                per_label_iou.append(jc(m1_bin, m2_bin))
        return 1 - (sum(per_label_iou) / 1)

    n, m = sample_arr.shape[0], gt_arr.shape[0]
    d_sy = [dist_fct(sample_arr[i], gt_arr[j]) for i in range(n) for j in range(m)]
    d_ss = [dist_fct(sample_arr[i], sample_arr[j]) for i in range(n) for j in range(n)]
    d_yy = [dist_fct(gt_arr[i], gt_arr[j]) for i in range(m) for j in range(m)]
    return (2.0 / (n * m)) * sum(d_sy) - (1.0 / n**2) * sum(d_ss) - (1.0 / m**2) * sum(d_yy)


def _discs(count: int, rng: np.random.Generator, empty_every: int = 0) -> np.ndarray:
    """``count`` 32 x 32 masks: discs of random centre and radius (every ``empty_every``-th empty)."""
    rows, columns = np.mgrid[:32, :32]
    masks = []
    for index in range(count):
        if empty_every and index % empty_every == 0:
            masks.append(np.zeros((32, 32), bool))
            continue
        centre = rng.uniform(10, 22, 2)
        radius = rng.uniform(3, 9)
        masks.append((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < radius**2)
    return np.stack(masks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ged_equals_phiseg_transcription(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples, raters = _discs(6, rng, empty_every=4), _discs(4, rng, empty_every=3)
    assert generalised_energy_distance(samples, raters) == pytest.approx(_phiseg_ged(samples, raters), abs=1e-12)


def test_ged_by_hand() -> None:
    a = np.zeros((1, 4, 4), bool)
    a[0, :2] = True  # 8 pixels
    b = np.zeros((1, 4, 4), bool)
    b[0, 1:3] = True  # 8 pixels, 4 shared: IoU 1/3, d = 2/3
    assert generalised_energy_distance(a, b) == pytest.approx(2 * 2 / 3)
    assert generalised_energy_distance(a, a) == 0.0
    empty = np.zeros((2, 4, 4), bool)
    assert generalised_energy_distance(empty, empty) == 0.0  # d(empty, empty) = 0
    assert generalised_energy_distance(empty[:1], a) == pytest.approx(2.0)  # d = 1 both ways, 0 within


def test_pairwise_iou_and_best_match_dice_by_hand() -> None:
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    empty = np.zeros((4, 4), bool)
    iou = pairwise_iou(np.stack([a, b, empty]), np.stack([a, empty]))
    assert np.allclose(iou, [[1.0, 0.0], [1 / 3, 0.0], [0.0, 1.0]])
    assert best_match_dice(np.stack([b, empty]), np.stack([a, empty])) == pytest.approx((0.5 + 1.0) / 2)
    assert sample_diversity(np.stack([a, b])) == pytest.approx(2 / 3)
    assert sample_diversity(a[None]) == 0.0


@pytest.mark.parametrize("samples_count", [3, 4, 5, 6])
def test_hungarian_matched_iou_is_the_best_matching_of_replicated_raters(samples_count: int) -> None:
    rng = np.random.default_rng(samples_count)
    samples, raters = _discs(samples_count, rng), _discs(3, rng, empty_every=3)
    replicated = np.concatenate([raters] * 2)[:samples_count]  # raters replicated up to N
    iou = pairwise_iou(samples, replicated)
    best = max(
        np.mean([iou[i, j] for i, j in enumerate(order)]) for order in itertools.permutations(range(samples_count))
    )
    assert hungarian_matched_iou(samples, raters) == pytest.approx(best)


def test_expected_calibration_error_equals_a_per_pixel_loop() -> None:
    rng = np.random.default_rng(3)
    raters = _discs(4, rng)
    probability = np.clip(raters.mean(axis=0) + rng.normal(0, 0.2, raters.shape[1:]), 0, 1)
    probability[0, 0], probability[0, 1] = 1.0, 0.0  # both ends of [0, 1]
    target = raters.mean(axis=0)
    total = 0.0
    for low in np.arange(10) / 10:
        inside = (probability >= low) & ((probability < low + 0.1) if low < 0.85 else (probability <= 1.0))
        if inside.any():
            total += inside.sum() / probability.size * abs(probability[inside].mean() - target[inside].mean())
    assert expected_calibration_error(probability, raters) == pytest.approx(total)
    assert expected_calibration_error(target, raters) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigurationError, match=r"\[0, 1\]"):
        expected_calibration_error(probability * 2, raters)


def test_consensus_masks() -> None:
    base = np.zeros((20, 20), bool)
    base[5:15, 5:15] = True
    raters = np.stack([base, np.roll(base, 1, 0), np.roll(base, -1, 1), base])
    votes = raters.sum(axis=0)
    assert np.array_equal(majority_vote(raters), votes >= 3)  # 4 raters: 2 of 4 is a tie, not a majority
    assert np.array_equal(staple(np.stack([base] * 3)), base)
    consensus = staple(raters)
    assert np.array_equal(consensus[votes == 4], np.ones(int((votes == 4).sum()), bool))
    assert not consensus[votes == 0].any()
    with pytest.raises(ConfigurationError, match="at least 3 raters"):
        staple(raters[:2])


def test_inter_rater_dice_and_uncertainty_agreement_by_hand():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 pixels
    b = np.zeros((4, 4), bool)
    b[:2, :3] = True  # 6 pixels, 4 shared with a
    empty = np.zeros((4, 4), bool)
    assert inter_rater_dice(np.stack([a, b])) == pytest.approx(2 * 4 / 10)
    assert inter_rater_dice(np.stack([a, b, empty])) == pytest.approx((0.8 + 0 + 0) / 3)
    assert inter_rater_dice(np.stack([empty, empty])) == 1.0
    assert np.isnan(inter_rater_dice(a[None]))
    raters = np.stack([a, b])  # they disagree on column 2 of the first two rows only
    hesitant = np.where(b & ~a, 0.5, a.astype(float))
    assert uncertainty_agreement(hesitant, raters) == pytest.approx(1.0)
    assert uncertainty_agreement(np.where(b & ~a, 1.0, np.where(a, 0.5, 0.0)), raters) < 0
    assert np.isnan(uncertainty_agreement(a.astype(float), raters))  # a model sure everywhere


def test_object_scores_answer_is_the_majority_of_the_samples():
    a = np.zeros((6, 6), bool)
    a[1:4, 1:4] = True
    b = a.copy()
    b[4, 1:4] = True
    samples = np.stack([a, a, b])  # majority: a
    scores = object_scores(samples, np.stack([a, b, b]))
    assert scores["dice_majority"] == pytest.approx(2 * 9 / (9 + 12))  # the raters' majority is b
    assert scores["dice_rater_max"] == 1.0 and scores["dice_rater_min"] == pytest.approx(18 / 21)
    assert scores["dice_staple"] == pytest.approx(scores["dice_majority"])
    assert np.isnan(object_scores(samples, np.stack([a, b]))["dice_staple"])  # STAPLE needs 3 raters
    assert scores["ged"] == pytest.approx(generalised_energy_distance(samples, np.stack([a, b, b])))
