"""Segmentation metrics for 2D and 3D boolean masks, with pixel spacing in mm.

- :mod:`~samia.metrics.overlap`: confusion counts, Dice, IoU.
- :mod:`~samia.metrics.surface`: HD95, ASSD, NSD (surface Dice; the published surfel variant by
  default), in mm.
- :mod:`~samia.metrics.factors`: properties of a ground-truth object (size, contrast, boundary
  complexity, shape) that may explain a model's failures.
- :mod:`~samia.metrics.summary`: all of them for one case, and an accumulator over cases.
- :mod:`~samia.metrics.volume`: per-slice Dice along an axis of a volume, and the area under a
  Dice-vs-clicks curve.
- :mod:`~samia.metrics.multirater`: several raters' masks and a model's samples: generalised energy
  distance, Hungarian-matched IoU, best-match Dice, sample diversity, calibration against the
  raters' mean mask, majority vote and STAPLE (their own empty rule: ``IoU(∅, ∅) = 1``).

Empty rule (nnU-Net style): when prediction and ground truth are both empty every metric is NaN
and reported as such; when exactly one is empty, Dice = IoU = NSD = 0 and HD95 = ASSD = the
diagonal of the image extent in mm. Each function states its definition in its docstring; the
surface conventions match MONAI 1.6.1 and are checked against it in the tests.
"""

from samia.metrics.overlap import (
    ConfusionCounts,
    confusion_counts,
    dice,
    dice_from_counts,
    iou,
    iou_from_counts,
)
from samia.metrics.settings import SurfaceSettings
from samia.metrics.summary import METRIC_NAMES, MetricAccumulator, segmentation_metrics
from samia.metrics.surface import (
    NSD_VARIANTS,
    SurfaceDistances,
    assd,
    assd_from_distances,
    boundary,
    hd95,
    hd95_from_distances,
    nsd,
    nsd_from_distances,
    surface_distances,
    surfel_nsd,
)
from samia.metrics.volume import click_auc, slice_dice

__all__ = [
    "SurfaceSettings",
    "METRIC_NAMES",
    "NSD_VARIANTS",
    "ConfusionCounts",
    "MetricAccumulator",
    "SurfaceDistances",
    "assd",
    "assd_from_distances",
    "boundary",
    "click_auc",
    "confusion_counts",
    "dice",
    "dice_from_counts",
    "hd95",
    "hd95_from_distances",
    "iou",
    "iou_from_counts",
    "nsd",
    "nsd_from_distances",
    "segmentation_metrics",
    "slice_dice",
    "surface_distances",
    "surfel_nsd",
]
