"""A synthetic vessel tree drawn on a real fundus background: the thin, elongated, branching
structure where Shi et al. found zero-shot SAM "completely failed", with an exact ground truth.

No vessel segmentation dataset installs offline, so the bundled ``fundus_vessels_2d`` sample
(``scripts/build_samples.py``) takes the fundus photograph that ships with scikit-image (CC0),
removes its own vessels (:func:`remove_dark_lines`), and darkens it along a seeded tree
(:func:`vessel_tree_mask`) whose branches narrow at each bifurcation by Murray's law for a
symmetric split (``r_child = 2**(-1/3) r_parent``) and wander by a random walk of direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import draw, morphology


@dataclass(frozen=True)
class TreeShape:
    """How a vessel tree grows (lengths and widths in pixels, angles in degrees).

    Attributes:
        root_width: width of the trunk.
        min_width: branches narrower than this are not drawn (and end the recursion).
        width_ratio: child width / parent width at a bifurcation (Murray: ``2**(-1/3)``).
        root_length: length of the trunk.
        length_ratio: child length / parent length.
        branch_angle: ``(low, high)`` of each child's deviation from its parent's direction.
        wander: standard deviation of the direction change per :attr:`step` of a branch.
        step: centreline step.
        max_depth: bifurcation levels below the trunk.
    """

    root_width: float = 4.0
    min_width: float = 1.0
    width_ratio: float = 2.0 ** (-1.0 / 3.0)
    root_length: float = 70.0
    length_ratio: float = 0.78
    branch_angle: tuple[float, float] = (18.0, 42.0)
    wander: float = 6.0
    step: float = 1.0
    max_depth: int = 6


def vessel_tree_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    root: tuple[float, float],
    direction_deg: float,
    tree: TreeShape = TreeShape(),
) -> np.ndarray:
    """Rasterise one vessel tree.

    Args:
        shape: ``(H, W)`` of the mask.
        rng: the only source of randomness.
        root: ``(row, col)`` where the trunk starts, pixels.
        direction_deg: the trunk's direction, degrees counter-clockwise from +col (image right).
        tree: growth parameters.

    Returns:
        ``(H, W)`` bool: every pixel within half a branch's width of its centreline (branches that
        leave the image are cut there).
    """
    mask = np.zeros(shape, dtype=bool)
    pending = [(np.asarray(root, dtype=float), math.radians(direction_deg), tree.root_length, tree.root_width, 0)]
    while pending:
        point, angle, length, width, depth = pending.pop()
        travelled = 0.0
        while travelled < length:
            angle += math.radians(rng.normal(0.0, tree.wander))
            point = point + tree.step * np.array([-math.sin(angle), math.cos(angle)])
            travelled += tree.step
            if not (0 <= point[0] < shape[0] and 0 <= point[1] < shape[1]):
                break
            rows, cols = draw.disk((point[0], point[1]), max(width / 2.0, 0.5), shape=shape)
            mask[rows, cols] = True
        else:
            child_width = width * tree.width_ratio
            if depth < tree.max_depth and child_width >= tree.min_width:
                for side in (-1.0, 1.0):
                    turn = math.radians(rng.uniform(*tree.branch_angle))
                    child_length = length * tree.length_ratio * rng.uniform(0.8, 1.2)
                    pending.append((point, angle + side * turn, child_length, child_width, depth + 1))
    return mask


def remove_dark_lines(gray: np.ndarray, radius: int) -> np.ndarray:
    """Grey-level closing by a disk of ``radius`` pixels: dark structures narrower than about
    ``2 * radius`` (a fundus photograph's own vessels) are filled from their surroundings.

    Args:
        gray: ``(H, W)`` image.
        radius: the disk's radius, pixels.

    Returns:
        ``(H, W)`` image of ``gray``'s dtype.
    """
    return morphology.closing(gray, morphology.disk(radius))


def draw_vessels(background: np.ndarray, mask: np.ndarray, contrast: float, blur_px: float = 0.7) -> np.ndarray:
    """Darken ``background`` along ``mask``: ``background * (1 - contrast * soft(mask))``, where
    ``soft`` is the mask blurred by a Gaussian of ``blur_px`` (anti-aliased vessel walls).

    Args:
        background: ``(H, W)`` uint8.
        mask: ``(H, W)`` bool.
        contrast: darkening at a vessel's centre, 0..1.
        blur_px: Gaussian sigma, pixels.

    Returns:
        ``(H, W)`` uint8.
    """
    soft = np.clip(ndimage.gaussian_filter(mask.astype(np.float64), blur_px), 0.0, 1.0)
    darkened = background.astype(np.float64) * (1.0 - contrast * soft)
    return np.clip(np.rint(darkened), 0, 255).astype(np.uint8)
