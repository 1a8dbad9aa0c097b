"""All metrics of one case at once, and an accumulator over cases (MONAI's update/aggregate/reset)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samia.metrics.overlap import confusion_counts, dice_from_counts, iou_from_counts
from samia.metrics.surface import (
    NSD_VARIANTS,
    assd_from_distances,
    hd95_from_distances,
    nsd_from_distances,
    surface_distances,
    surfel_nsd,
)

METRIC_NAMES: tuple[str, ...] = ("dice", "iou", "hd95", "assd", "nsd")
"""The ratio and distance metrics :func:`segmentation_metrics` reports, in report order."""


def segmentation_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    nsd_tolerance_mm: float = 2.0,
    nsd_variant: str = "surfel",
    nsd_zero_at_dice: float | None = None,
) -> dict[str, float]:
    """Every metric of one prediction against one ground truth, boundaries computed once.

    Args:
        pred: predicted mask, ``bool`` (or 0/1 integer), 2D ``(H, W)`` or 3D ``(Z, Y, X)``.
        gt: ground-truth mask of the same shape.
        spacing: pixel size per array axis in mm, ``(y, x)`` or ``(z, y, x)``.
        nsd_tolerance_mm: the NSD tolerance in mm.
        nsd_variant: ``"surfel"`` (published NSD, :func:`~samia.metrics.surface.surfel_nsd`) or
            ``"boundary_pixels"`` (:func:`~samia.metrics.surface.nsd_from_distances`).
        nsd_zero_at_dice: when given, NSD is 0 wherever Dice <= this value (the CVPR 2024
            challenge's rule uses 0.2); None (default) = NSD as measured.

    Returns:
        ``dice``, ``iou``, ``nsd`` (ratios in [0, 1]), ``hd95``, ``assd`` (mm) with the empty rules
        of :mod:`samia.metrics.overlap` and :mod:`samia.metrics.surface` (all NaN when both masks are
        empty; when exactly one is, Dice = IoU = NSD = 0 and HD95 = ASSD = the image diagonal in
        mm), and the integer pixel (voxel) counts ``tp``, ``fp``, ``fn``, ``gt_area``,
        ``pred_area``.

    Raises:
        ValueError: shapes differ, a mask is not binary, the masks are not 2D/3D, ``spacing`` does
            not have one finite positive entry per axis, or the tolerance is negative.
    """
    if nsd_variant not in NSD_VARIANTS:
        raise ValueError(f"unknown NSD variant {nsd_variant!r}; known: {', '.join(NSD_VARIANTS)}")
    counts = confusion_counts(pred, gt)
    distances = surface_distances(pred, gt, spacing)
    dice_value = dice_from_counts(counts)
    if nsd_variant == "surfel":
        nsd_value = surfel_nsd(pred, gt, spacing, nsd_tolerance_mm)
    else:
        nsd_value = nsd_from_distances(distances, nsd_tolerance_mm)
    if nsd_zero_at_dice is not None and dice_value <= nsd_zero_at_dice:
        nsd_value = 0.0
    return {
        "dice": dice_value,
        "iou": iou_from_counts(counts),
        "hd95": hd95_from_distances(distances),
        "assd": assd_from_distances(distances),
        "nsd": nsd_value,
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
        "gt_area": counts.tp + counts.fn,
        "pred_area": counts.tp + counts.fp,
    }


class MetricAccumulator:
    """Collects :func:`segmentation_metrics` over cases and averages them.

    Cases where a metric is NaN (both masks empty) are left out of that metric's mean and counted
    in ``n_nan_<metric>`` instead, so they are reported, never silently dropped.

    Args:
        nsd_tolerance_mm, nsd_variant, nsd_zero_at_dice: the NSD options of every case
            (:func:`segmentation_metrics`).
    """

    def __init__(
        self, nsd_tolerance_mm: float = 2.0, nsd_variant: str = "surfel", nsd_zero_at_dice: float | None = None
    ) -> None:
        self.nsd_tolerance_mm = nsd_tolerance_mm
        self.nsd_variant = nsd_variant
        self.nsd_zero_at_dice = nsd_zero_at_dice
        self._cases: list[dict[str, float]] = []

    def update(self, pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
        """Compute and store the metrics of one case; returns them (see :func:`segmentation_metrics`)."""
        result = segmentation_metrics(pred, gt, spacing, self.nsd_tolerance_mm, self.nsd_variant, self.nsd_zero_at_dice)
        self._cases.append(result)
        return result

    def aggregate(self) -> dict[str, float]:
        """The mean of each metric over the cases where it is defined.

        Returns:
            For each name in :data:`METRIC_NAMES`, the mean over cases where it is not NaN (NaN if
            there is none); ``n_nan_<name>``, the number of cases where it is NaN; and ``n_cases``.
        """
        summary: dict[str, float] = {"n_cases": len(self._cases)}
        for name in METRIC_NAMES:
            values = np.array([case[name] for case in self._cases], dtype=np.float64)
            defined = values[~np.isnan(values)]
            summary[name] = float(defined.mean()) if defined.size else float("nan")
            summary[f"n_nan_{name}"] = int(values.size - defined.size)
        return summary

    def reset(self) -> None:
        """Forget every case added so far."""
        self._cases.clear()
