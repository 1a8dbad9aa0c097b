"""Surface metrics in mm: HD95, ASSD and NSD (surface Dice), for 2D and 3D masks.

Conventions, chosen to agree with MONAI 1.6.1 (``monai.metrics.compute_hausdorff_distance``,
``compute_average_surface_distance``, ``compute_surface_dice`` with ``use_subvoxels=False``):

- The boundary of a mask is ``mask AND NOT binary_erosion(mask)`` with the *face*-connectivity
  structure (the 3x3 cross in 2D, the 6-neighbour cross in 3D; scipy's default, which MONAI's
  ``get_mask_edges`` uses), and the outside of the image counts as background: an object touching
  the image border has boundary pixels on the border.
- Distances are exact Euclidean distances between pixel centres, in mm, with the pixel spacing
  given per array axis.

Every metric reads one :class:`SurfaceDistances`, so a caller that wants several of them computes
the boundaries and distance transforms once (see :func:`samia.metrics.segmentation_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from samia.metrics._validation import as_mask, as_mask_pair, as_spacing


@dataclass(frozen=True)
class SurfaceDistances:
    """The directed boundary-to-boundary distances of one prediction against one ground truth.

    Attributes:
        pred_to_gt: float64 ``(n_pred_boundary,)``, mm: for each boundary pixel of ``pred`` (in
            C order), the distance to the nearest boundary pixel of ``gt``; ``inf`` if ``gt`` is
            empty. Empty if ``pred`` is empty.
        gt_to_pred: float64 ``(n_gt_boundary,)``, mm: the same from ``gt`` to ``pred``.
        diagonal_mm: the diagonal of the image extent, ``sqrt(sum((shape * spacing) ** 2))`` in mm,
            the penalty HD95 and ASSD take when exactly one mask is empty.
    """

    pred_to_gt: np.ndarray
    gt_to_pred: np.ndarray
    diagonal_mm: float


def boundary(mask: np.ndarray) -> np.ndarray:
    """The boundary of a mask: ``mask AND NOT binary_erosion(mask)``.

    The erosion uses the face-connectivity cross (scipy's and MONAI's default) and treats pixels
    outside the image as background, so foreground pixels on the image border are boundary pixels.

    Args:
        mask: ``bool`` (or 0/1 integer) array of any dimension (2D or 3D in samia).

    Returns:
        ``bool`` array of the same shape; empty where ``mask`` is empty.
    """
    mask = as_mask(mask, "mask")
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def surface_distances(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> SurfaceDistances:
    """Distances from each boundary pixel of one mask to the nearest boundary pixel of the other.

    Both masks are first cropped to the bounding box of their union and padded by one background
    pixel on every side (as MONAI's ``get_mask_edges(crop=True)``), so a small object on a large
    image costs only the size of the object. The crop does not change the result: the pixels
    around the box are background, inside the image as well as outside it. Distances come from
    ``scipy.ndimage.distance_transform_edt(~boundary(target), sampling=spacing)`` read at the
    source boundary.

    Args:
        pred: predicted mask, ``bool`` (or 0/1 integer), 2D ``(H, W)`` or 3D ``(Z, Y, X)``.
        gt: ground-truth mask of the same shape.
        spacing: pixel size per array axis in mm, ``(y, x)`` or ``(z, y, x)``.

    Returns:
        The directed distances in mm; both arrays are empty when both masks are empty.

    Raises:
        ValueError: shapes differ, a mask is not binary, the masks are not 2D/3D, or ``spacing``
            does not have one finite positive entry per axis.
    """
    pred, gt = as_mask_pair(pred, gt)
    sampling = as_spacing(spacing, pred.ndim)
    diagonal_mm = float(np.sqrt(np.sum((np.asarray(pred.shape) * sampling) ** 2)))
    union = pred | gt
    if not union.any():
        return SurfaceDistances(np.empty(0), np.empty(0), diagonal_mm)
    box = _bounding_box(union)
    pred_edge = boundary(np.pad(pred[box], 1))
    gt_edge = boundary(np.pad(gt[box], 1))
    return SurfaceDistances(
        pred_to_gt=_distances_to(pred_edge, gt_edge, sampling),
        gt_to_pred=_distances_to(gt_edge, pred_edge, sampling),
        diagonal_mm=diagonal_mm,
    )


def hd95_from_distances(distances: SurfaceDistances) -> float:
    """HD95 in mm: the larger of the two directed 95th percentiles of the boundary distances.

    ``HD95 = max(P95(pred_to_gt), P95(gt_to_pred))`` with linear interpolation between order
    statistics (numpy's and ``torch.quantile``'s default), as
    ``monai.metrics.compute_hausdorff_distance(percentile=95)``.

    Empty rule: NaN when both masks are empty; ``distances.diagonal_mm`` (the diagonal of the image
    extent, a finite worst case) when exactly one is empty, where MONAI gives ``inf``.
    """
    penalty = _empty_penalty(distances)
    if penalty is not None:
        return penalty
    return float(max(np.percentile(distances.pred_to_gt, 95), np.percentile(distances.gt_to_pred, 95)))


def assd_from_distances(distances: SurfaceDistances) -> float:
    """ASSD in mm: the mean of all boundary distances of both directions, pooled.

    ``ASSD = (sum(pred_to_gt) + sum(gt_to_pred)) / (n_pred_boundary + n_gt_boundary)``: each
    boundary pixel weighs the same, so the larger boundary weighs more. This is
    ``monai.metrics.compute_average_surface_distance(symmetric=True)``, which concatenates the two
    directions; it is not the mean of the two directed means.

    Empty rule: NaN when both masks are empty; ``distances.diagonal_mm`` when exactly one is empty,
    where MONAI gives ``inf``.
    """
    penalty = _empty_penalty(distances)
    if penalty is not None:
        return penalty
    return float(np.concatenate([distances.pred_to_gt, distances.gt_to_pred]).mean())


def nsd_from_distances(distances: SurfaceDistances, tolerance_mm: float = 2.0) -> float:
    """NSD (normalised surface distance, surface Dice) at ``tolerance_mm``, in [0, 1].

    ``NSD = (|{p in dPred : d(p, dGT) <= tol}| + |{g in dGT : d(g, dPred) <= tol}|)
    / (|dPred| + |dGT|)`` with ``dPred``, ``dGT`` the boundary pixels, each counted once (no
    sub-voxel surface areas): ``monai.metrics.compute_surface_dice(class_thresholds=[tol],
    use_subvoxels=False)``. A distance equal to the tolerance counts as within it.

    Empty rule: NaN when both masks are empty; 0.0 when exactly one is empty.

    Raises:
        ValueError: ``tolerance_mm`` is negative or not finite.
    """
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise ValueError(f"tolerance_mm must be finite and >= 0, got {tolerance_mm}")
    total = distances.pred_to_gt.size + distances.gt_to_pred.size
    if total == 0:
        return float("nan")
    within = np.count_nonzero(distances.pred_to_gt <= tolerance_mm) + np.count_nonzero(
        distances.gt_to_pred <= tolerance_mm
    )
    return float(within / total)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm; see :func:`hd95_from_distances`.

    Args:
        pred, gt: masks of one shape, ``bool`` (or 0/1 integer), 2D or 3D.
        spacing: pixel size per array axis in mm, ``(y, x)`` or ``(z, y, x)``.

    Returns:
        HD95 in mm; NaN when both masks are empty, the image diagonal in mm when exactly one is.
    """
    return hd95_from_distances(surface_distances(pred, gt, spacing))


def assd(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> float:
    """Average symmetric surface distance in mm, both directions pooled; see :func:`assd_from_distances`.

    Args:
        pred, gt: masks of one shape, ``bool`` (or 0/1 integer), 2D or 3D.
        spacing: pixel size per array axis in mm, ``(y, x)`` or ``(z, y, x)``.

    Returns:
        ASSD in mm; NaN when both masks are empty, the image diagonal in mm when exactly one is.
    """
    return assd_from_distances(surface_distances(pred, gt, spacing))


def nsd(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance_mm: float = 2.0) -> float:
    """Normalised surface distance (surface Dice) at ``tolerance_mm``; see :func:`nsd_from_distances`.

    Args:
        pred, gt: masks of one shape, ``bool`` (or 0/1 integer), 2D or 3D.
        spacing: pixel size per array axis in mm, ``(y, x)`` or ``(z, y, x)``.
        tolerance_mm: the distance in mm within which a boundary pixel counts as correct.

    Returns:
        NSD in [0, 1]; NaN when both masks are empty, 0.0 when exactly one is.
    """
    return nsd_from_distances(surface_distances(pred, gt, spacing), tolerance_mm)


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The tight bounding box of a non-empty mask, one slice per axis."""
    box = []
    for axis in range(mask.ndim):
        other_axes = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other_axes))
        box.append(slice(hits[0], hits[-1] + 1))
    return tuple(box)


def _distances_to(source_edge: np.ndarray, target_edge: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    """Distance in mm from each ``source_edge`` pixel (C order) to the nearest ``target_edge`` pixel."""
    if not target_edge.any():
        return np.full(np.count_nonzero(source_edge), np.inf)
    return ndimage.distance_transform_edt(~target_edge, sampling=sampling)[source_edge]


def _empty_penalty(distances: SurfaceDistances) -> float | None:
    """NaN if both masks are empty, the image diagonal if exactly one is, None if neither is."""
    pred_empty = distances.pred_to_gt.size == 0
    gt_empty = distances.gt_to_pred.size == 0
    if pred_empty and gt_empty:
        return float("nan")
    if pred_empty or gt_empty:
        return distances.diagonal_mm
    return None
