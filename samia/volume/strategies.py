"""Volume prompt strategies: prompts made from a ground-truth ``(Z, Y, X)`` object mask, for evaluation.

The ``--strategy`` values that evaluate whole volumes (rows with ``level = "volume"``):

``box3d``
    The CVPR 2024 rule from the object's tight 3D box (:mod:`samia.volume.engine`).
``keyslice_box`` / ``keyslice_point``
    The tight box / samia's ``point1`` point (centroid, or the nearest object pixel) on the slice
    where the object is largest (the first such slice on a tie), then propagation with
    :data:`~samia.volume.propagation.KEY_SLICE_SETTINGS` (no range given: it must find the
    object's ends itself).
``slice_boxes``
    The tight box on every slice that holds the object, no propagation: the oracle upper bound of
    any box-propagation rule (it is given the extent the others have to find).
``box3d_clicks``
    ``box3d``, then up to ``max_clicks`` corrections as the CVPR 2025 interactive 3D challenge
    simulates them (:func:`correction_click`); each click joins the prompt of its slice (the 3D
    box's projection plus every click on that slice), that slice becomes a key slice, and the
    object is propagated again between its key slices inside the box's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samia.prompts.primitives import positive_points, tight_box
from samia.types import Prompt
from samia.volume.prompts import Box3D, KeySlice, VolumePrompt, box3d_of_mask

VOLUME_STRATEGIES: dict[str, str] = {
    "box3d": "CVPR 2024 rule: the tight 3D box's projection on its middle slice, then box propagation "
    "to both ends of the box (3 px margin in the 256 frame)",
    "keyslice_box": "tight box on the slice where the object is largest, then propagation until the "
    "mask is empty or its IoU with the previous slice drops below 0.5",
    "keyslice_point": "point1 (centroid rule) on the slice where the object is largest, then propagation "
    "as keyslice_box",
    "slice_boxes": "oracle upper bound: the tight box on every slice holding the object, no propagation",
    "box3d_clicks": "box3d, then up to --max-clicks corrections at the deepest point of the largest 3D "
    "error component (CVPR 2025 rule), each re-propagated from its slice",
    "box3d_memory": "box3d's prompt (the box's projection on its middle slice, the box's z-range), tracked "
    "with SAM 2's memory bank in both directions (SAM 2 family)",
    "keyslice_box_memory": "keyslice_box's prompt tracked with SAM 2's memory bank through the volume (SAM 2 family)",
    "keyslice_point_memory": "keyslice_point's prompt tracked with SAM 2's memory bank through the volume "
    "(SAM 2 family)",
    "box3d_clicks_memory": "box3d_clicks' prompts and correction clicks, each clicked slice a conditioning "
    "frame of SAM 2's memory tracking (SAM 2 family)",
}
"""Name -> rule of each volume strategy."""

MEMORY_SUFFIX = "_memory"
"""A volume strategy whose name ends so is its slice-engine namesake's prompts tracked by
:mod:`samia.volume.memory` (one row per object: the tracker has no mask-selection rule)."""


def engine_strategy(strategy: str) -> str:
    """The slice-engine strategy whose prompts ``strategy`` uses (itself for slice-engine ones)."""
    return strategy.removesuffix(MEMORY_SUFFIX)


CLICK_SEED = 42
"""Seed of the challenge's tie-break among equally deep voxels (``np.random.seed(42)``)."""


def plane(volume: np.ndarray, index: int, axis: int) -> np.ndarray:
    """Slice ``index`` of ``volume`` along ``axis`` (a view)."""
    return np.moveaxis(volume, axis, 0)[index]


def largest_slice(mask: np.ndarray, axis: int) -> int:
    """The slice along ``axis`` where the ``(Z, Y, X)`` mask has the most voxels (the first on a tie)."""
    others = tuple(a for a in range(3) if a != axis)
    return int(np.argmax(np.count_nonzero(mask, axis=others)))


def volume_prompt(strategy: str, mask: np.ndarray, axis: int) -> VolumePrompt:
    """The prompt of a static volume strategy (all but the ``box3d_clicks`` ones) for the object ``mask``."""
    strategy = engine_strategy(strategy)
    if strategy in ("box3d", "box3d_clicks"):
        return VolumePrompt(box3d=box3d_of_mask(mask))
    if strategy in ("keyslice_box", "keyslice_point"):
        index = largest_slice(mask, axis)
        key_mask = plane(mask, index, axis)
        if strategy == "keyslice_box":
            prompt = Prompt(box=tight_box(key_mask))
        else:
            points, rule = positive_points(key_mask, 1)
            prompt = Prompt(points=points, labels=np.ones(1, dtype=np.int64), meta={"point_rule": rule})
        return VolumePrompt(key_slices=(KeySlice(index, prompt),))
    if strategy == "slice_boxes":
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(np.any(mask, axis=others))
        keys = tuple(KeySlice(int(i), Prompt(box=tight_box(plane(mask, int(i), axis)))) for i in occupied)
        return VolumePrompt(key_slices=keys, propagate=False)
    raise ValueError(f"unknown volume strategy {strategy!r}; known: {', '.join(VOLUME_STRATEGIES)}")


@dataclass(frozen=True)
class Click3D:
    """A correction click at voxel ``(z, y, x)``; ``label`` 1 = foreground (the model missed it), 0 = background."""

    voxel: tuple[int, int, int]
    label: int


def correction_click(pred: np.ndarray, gt: np.ndarray) -> Click3D | None:
    """The CVPR 2025 challenge's next click (``CVPR25_iter_eval.py``): the largest 26-connected
    component of the error ``pred != gt``, the voxels of it deepest by Euclidean distance transform
    (in voxels, not mm), one of them drawn with ``np.random.seed(42)``; a foreground click where the
    ground truth holds the object, else a background click. None when the prediction is perfect."""
    from scipy import ndimage  # here: segmenting one image never pays its import

    error = pred != gt
    if not error.any():
        return None
    components, count = ndimage.label(error, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest = components == int(np.argmax(sizes))
    depth = ndimage.distance_transform_edt(np.pad(largest, 1))[1:-1, 1:-1, 1:-1]
    deepest = np.argwhere(depth == depth.max())
    chosen = deepest[np.random.RandomState(CLICK_SEED).choice(len(deepest))]
    voxel = (int(chosen[0]), int(chosen[1]), int(chosen[2]))
    return Click3D(voxel, 1 if gt[voxel] else 0)


def clicked_prompt(box: Box3D, clicks: list[Click3D], axis: int) -> VolumePrompt:
    """``box3d`` with the clicks so far: the box's middle slice and every clicked slice are key
    slices, each prompted with the box's projection and the clicks on it, bounded by the box."""
    low, high, box2d = box.along(axis)
    by_slice: dict[int, list[Click3D]] = {box.middle(axis): []}
    for click in clicks:
        by_slice.setdefault(click.voxel[axis], []).append(click)
    keys = []
    for index, on_slice in sorted(by_slice.items()):
        if not on_slice:
            keys.append(KeySlice(index, Prompt(box=box2d)))
            continue
        plane_axes = [a for a in range(3) if a != axis]  # (rows, columns) of the plane
        points = np.array([[c.voxel[plane_axes[1]], c.voxel[plane_axes[0]]] for c in on_slice], dtype=np.float64)
        labels = np.array([c.label for c in on_slice], dtype=np.int64)
        keys.append(KeySlice(index, Prompt(points=points, labels=labels, box=box2d)))
    return VolumePrompt(key_slices=tuple(keys), bounds=(low, high))
