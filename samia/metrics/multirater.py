"""Metrics of an object that several raters annotated, and of a model that answers with several
samples (a distribution of masks) rather than one mask.

Masks are bool arrays of any one shape, stacked on a first axis: ``samples`` ``(N, ...)``, ``raters``
``(K, ...)``, one mask per rater who annotated the object (a rater who did not annotate it is left
out, never counted as an empty mask). Unlike samia's one-truth metrics (both empty: NaN), the
distribution metrics follow the Probabilistic U-Net / PHiSeg evaluation: the distance is
``d = 1 - IoU`` with ``IoU(empty, empty) = 1`` (``d(∅, ∅) = 0``), so a rater who saw no lesion and a
sample that shows none agree.

- :func:`pairwise_iou`: the ``(N, K)`` IoU matrix under that convention.
- :func:`generalised_energy_distance`: ``2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]`` over all
  ordered pairs, self-pairs included (PHiSeg's ``generalised_energy_distance``).
- :func:`hungarian_matched_iou`: the raters replicated up to ``N`` (Kohl et al. 2019), matched to
  the samples one to one by the Hungarian algorithm on ``1 - IoU``; the mean matched IoU.
- :func:`best_match_dice`: for each rater, the Dice of the sample closest to it; their mean.
- :func:`sample_diversity`: the mean ``d`` between distinct samples.
- :func:`mean_mask`: the fraction of masks marking each pixel (a sampler's probability map).
- :func:`expected_calibration_error`: a probability map against the raters' mean mask, in
  equal-width bins.
- :func:`majority_vote` and :func:`staple`: consensus masks (STAPLE by SimpleITK, from 3 raters).
- :func:`uncertainty_agreement`: the correlation of a sampler's per-pixel uncertainty with the
  raters' disagreement.
- :func:`inter_rater_dice`: the mean Dice over pairs of raters (how much the raters agree).
- :func:`object_scores`: every metric above for one object, the columns of a multi-rater run.
"""

from __future__ import annotations

import numpy as np

from samia.errors import ConfigurationError

STAPLE_MIN_RATERS = 3
"""STAPLE estimates each rater's sensitivity and specificity: with fewer raters it is not defined
well enough to use (majority vote then)."""


def _stack(masks: np.ndarray, what: str) -> np.ndarray:
    stacked = np.asarray(masks, dtype=bool)
    if stacked.ndim < 2 or len(stacked) == 0:
        raise ConfigurationError(f"{what}: expected a non-empty stack of masks (N, ...), got shape {stacked.shape}")
    return stacked.reshape(len(stacked), -1)


def pairwise_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(N, ...)`` and ``(K, ...)`` bool masks -> ``(N, K)`` float64 IoU, 1 where both are empty."""
    a, b = _stack(first, "first"), _stack(second, "second")
    if a.shape[1] != b.shape[1]:
        raise ConfigurationError(f"masks of {np.asarray(first).shape[1:]} and {np.asarray(second).shape[1:]} differ")
    a_float, b_float = a.astype(np.float64), b.astype(np.float64)
    intersection = a_float @ b_float.T
    union = a_float.sum(axis=1)[:, None] + b_float.sum(axis=1)[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / np.maximum(union, 1), 1.0)
    return iou


def generalised_energy_distance(samples: np.ndarray, raters: np.ndarray) -> float:
    """``D_GED^2 = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]`` with ``d = 1 - IoU`` (module docstring),
    every expectation a mean over all ordered pairs (``N * K``, ``N^2``, ``K^2``). 0 for identical
    sets; lower is better."""
    cross = 1.0 - pairwise_iou(samples, raters)
    among_samples = 1.0 - pairwise_iou(samples, samples)
    among_raters = 1.0 - pairwise_iou(raters, raters)
    return float(2.0 * cross.mean() - among_samples.mean() - among_raters.mean())


def hungarian_matched_iou(samples: np.ndarray, raters: np.ndarray) -> float:
    """The mean IoU of a one-to-one matching of the ``N`` samples to the ``K`` raters replicated up to
    ``N`` (each ``ceil(N / K)`` times, the first ``N`` kept), the matching that maximises it
    (``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``). Higher is better."""
    from scipy.optimize import linear_sum_assignment

    count = len(np.asarray(samples))
    rater_stack = np.asarray(raters, dtype=bool)
    replicated = np.concatenate([rater_stack] * -(-count // len(rater_stack)))[:count]
    iou = pairwise_iou(samples, replicated)
    rows, columns = linear_sum_assignment(1.0 - iou)
    return float(iou[rows, columns].mean())


def best_match_dice(samples: np.ndarray, raters: np.ndarray) -> float:
    """Mean over raters of the best Dice any sample reaches against that rater (Dice = 1 where both
    are empty, as the IoU). Higher is better."""
    iou = pairwise_iou(samples, raters)
    dice = 2.0 * iou / (1.0 + iou)
    return float(dice.max(axis=0).mean())


def sample_diversity(samples: np.ndarray) -> float:
    """Mean ``1 - IoU`` over the ``N (N - 1)`` ordered pairs of distinct samples (0 for one sample)."""
    count = len(np.asarray(samples))
    if count < 2:
        return 0.0
    distance = 1.0 - pairwise_iou(samples, samples)
    return float(distance.sum() / (count * (count - 1)))


def mean_mask(masks: np.ndarray) -> np.ndarray:
    """The fraction of the masks marking each pixel (the raters' mean mask; a sampler's probability
    map): ``(K, ...)`` bool -> ``(...)`` float64 in [0, 1]."""
    stacked = np.asarray(masks, dtype=bool)
    _stack(stacked, "masks")
    mean: np.ndarray = stacked.mean(axis=0, dtype=np.float64)
    return mean


def expected_calibration_error(probability: np.ndarray, raters: np.ndarray, bins: int = 10) -> float:
    """``sum_b |B_b| / n * |mean(p in B_b) - mean(t in B_b)|``: pixels binned by their probability
    ``p`` into ``bins`` equal-width bins on [0, 1] (the last closed), ``t`` the raters' mean mask.

    Raises:
        ConfigurationError: probabilities outside [0, 1] or another shape than the raters' masks.
    """
    p = np.asarray(probability, dtype=np.float64)
    target = mean_mask(raters)
    if p.shape != target.shape:
        raise ConfigurationError(f"probability map {p.shape} and rater masks {target.shape} differ")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ConfigurationError("probabilities must lie in [0, 1]")
    which = np.minimum((p.ravel() * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    p_sums = np.bincount(which, weights=p.ravel(), minlength=bins)
    t_sums = np.bincount(which, weights=target.ravel(), minlength=bins)
    filled = counts > 0
    gaps = np.abs(p_sums[filled] - t_sums[filled])  # |B| * |mean p - mean t|
    return float(gaps.sum() / p.size)


def majority_vote(raters: np.ndarray) -> np.ndarray:
    """Pixels more than half of the raters marked (a tie is not a majority): ``(...)`` bool."""
    stacked = np.asarray(raters, dtype=bool)
    _stack(stacked, "raters")
    votes: np.ndarray = 2 * stacked.sum(axis=0) > len(stacked)
    return votes


def staple(raters: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """SimpleITK's STAPLE consensus (Warfield et al. 2004) of ``K >= 3`` raters' masks: pixels whose
    estimated probability of being foreground exceeds ``threshold``: ``(...)`` bool.

    Raises:
        ConfigurationError: fewer than :data:`STAPLE_MIN_RATERS` raters.
    """
    import SimpleITK as sitk

    stacked = np.asarray(raters, dtype=bool)
    if len(stacked) < STAPLE_MIN_RATERS:
        raise ConfigurationError(
            f"STAPLE needs at least {STAPLE_MIN_RATERS} raters, got {len(stacked)}: use the majority vote"
        )
    images = [sitk.GetImageFromArray(mask.astype(np.uint8)) for mask in stacked]
    probability = sitk.GetArrayFromImage(sitk.STAPLE(images, 1.0))
    consensus: np.ndarray = probability > threshold
    return consensus


def uncertainty_agreement(probability: np.ndarray, raters: np.ndarray) -> float:
    """Pearson correlation of a probability map's per-pixel uncertainty ``p (1 - p)`` with the raters'
    disagreement ``t (1 - t)`` (``t`` their mean mask): 1 where the model hesitates exactly where the
    raters differ. NaN when either map is constant (no uncertainty, or raters who all agree)."""
    p = np.asarray(probability, dtype=np.float64).ravel()
    target = mean_mask(raters).ravel()
    model_map, rater_map = p * (1 - p), target * (1 - target)
    if model_map.std() == 0 or rater_map.std() == 0:
        return float("nan")
    return float(np.corrcoef(model_map, rater_map)[0, 1])


def inter_rater_dice(raters: np.ndarray) -> float:
    """Mean Dice over the ``K (K - 1) / 2`` pairs of distinct raters (both empty: 1); NaN for one rater."""
    count = len(np.asarray(raters))
    if count < 2:
        return float("nan")
    iou = pairwise_iou(raters, raters)
    dice = 2.0 * iou / (1.0 + iou)
    return float(dice[np.triu_indices(count, k=1)].mean())


def object_scores(samples: np.ndarray, raters: np.ndarray) -> dict[str, float]:
    """A sampler's ``(N, H, W)`` bool samples against one object's ``(K, H, W)`` rater masks.

    The sampler's *answer* is the majority of its samples (``mean_mask >= 0.5``); its Dice and IoU
    against each rater, the majority vote and STAPLE (NaN under :data:`STAPLE_MIN_RATERS` raters)
    use the one-mask convention of the papers above (both empty: 1).

    Returns:
        ``dice_rater_mean``, ``dice_rater_min``, ``dice_rater_max``, ``dice_majority``,
        ``iou_majority``, ``dice_staple``, ``ged``, ``matched_iou``, ``best_match_dice``,
        ``diversity``, ``ece``, ``uncertainty_agreement``, ``inter_rater_dice``.
    """
    probability = mean_mask(samples)
    answer = (probability >= 0.5)[None]
    to_raters = pairwise_iou(answer, raters)[0]
    consensus = [majority_vote(raters)]
    if len(raters) >= STAPLE_MIN_RATERS:
        consensus.append(staple(raters))
    to_consensus = pairwise_iou(answer, np.stack(consensus))[0]
    dice_raters, dice_consensus = 2 * to_raters / (1 + to_raters), 2 * to_consensus / (1 + to_consensus)
    return {
        "dice_rater_mean": float(dice_raters.mean()),
        "dice_rater_min": float(dice_raters.min()),
        "dice_rater_max": float(dice_raters.max()),
        "dice_majority": float(dice_consensus[0]),
        "iou_majority": float(to_consensus[0]),
        "dice_staple": float(dice_consensus[1]) if len(consensus) > 1 else float("nan"),
        "ged": generalised_energy_distance(samples, raters),
        "matched_iou": hungarian_matched_iou(samples, raters),
        "best_match_dice": best_match_dice(samples, raters),
        "diversity": sample_diversity(samples),
        "ece": expected_calibration_error(probability, raters),
        "uncertainty_agreement": uncertainty_agreement(probability, raters),
        "inter_rater_dice": inter_rater_dice(raters),
    }
