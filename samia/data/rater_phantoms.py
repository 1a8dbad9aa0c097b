"""Seeded phantoms of an ambiguous object annotated by several simulated raters, for tests and the
multi-rater demo.

The object is a bright core (an ellipse) with an *ambiguous part*: a dimmer lobe attached to it,
half-way in contrast between the core and the background, which some raters count as object and
others do not. Each rater draws it by a fixed rule (:class:`RaterModel`), set before any model
was trained or scored on these phantoms:

- ``boundary_shift``: the drawn outline lies this many pixels outside (+) or inside (-) the true
  one (a signed distance threshold);
- ``includes_ambiguous``: the rater includes the dim lobe;
- ``smoothing``: the outline is smoothed by a Gaussian of this sigma in pixels (0 = none), as a
  rater who draws coarse strokes.

:data:`RATER_MODELS` are the four raters of the demo: two that include the lobe (one generous,
one exact), one exact that excludes it, one tight and smooth that excludes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samia.types import Image2D


@dataclass(frozen=True)
class RaterModel:
    """How one simulated rater draws the object (module docstring)."""

    name: str
    boundary_shift: float
    includes_ambiguous: bool
    smoothing: float = 0.0


RATER_MODELS: tuple[RaterModel, ...] = (
    RaterModel("generous", boundary_shift=1.5, includes_ambiguous=True),
    RaterModel("exact_with_lobe", boundary_shift=0.0, includes_ambiguous=True),
    RaterModel("exact_without_lobe", boundary_shift=0.0, includes_ambiguous=False),
    RaterModel("tight_smooth", boundary_shift=-1.5, includes_ambiguous=False, smoothing=2.0),
)
"""The demo's raters, fixed before any training."""


@dataclass(frozen=True)
class RaterPhantom:
    """One phantom: the image, the object's parts, and each rater's mask.

    Attributes:
        image: ``(H, W)`` float32 in [0, 1], spacing 1 mm.
        core: ``(H, W)`` bool: the part every rater includes.
        ambiguous: ``(H, W)`` bool: the dim lobe (disjoint from ``core``).
        raters: the rater models, in the order of ``masks``.
        masks: ``(K, H, W)`` bool: each rater's annotation.
    """

    image: Image2D
    core: np.ndarray
    ambiguous: np.ndarray
    raters: tuple[RaterModel, ...]
    masks: np.ndarray


def rater_phantom(
    rng: np.random.Generator, shape: tuple[int, int] = (96, 96), raters: tuple[RaterModel, ...] = RATER_MODELS
) -> RaterPhantom:
    """A phantom drawn from ``rng`` (the only source of randomness) with one mask per rater."""
    from scipy import ndimage

    height, width = shape
    rows, columns = np.mgrid[:height, :width].astype(np.float64)
    centre = np.array([height, width]) * rng.uniform(0.4, 0.6, 2)
    radii = np.array([height, width]) * rng.uniform(0.12, 0.18, 2)
    core = ((rows - centre[0]) / radii[0]) ** 2 + ((columns - centre[1]) / radii[1]) ** 2 < 1
    angle = rng.uniform(0, 2 * np.pi)
    lobe_centre = centre + 1.1 * radii * np.array([np.sin(angle), np.cos(angle)])
    lobe_radius = radii.min() * rng.uniform(0.55, 0.75)
    ambiguous = (((rows - lobe_centre[0]) ** 2 + (columns - lobe_centre[1]) ** 2) < lobe_radius**2) & ~core
    intensity = np.where(core, 0.8, np.where(ambiguous, 0.5, 0.2)) + rng.normal(0, 0.05, shape)
    image = Image2D(
        np.clip(intensity, 0, 1).astype(np.float32), spacing=(1.0, 1.0), modality="MR", path="rater_phantom"
    )
    masks = []
    for rater in raters:
        truth = core | ambiguous if rater.includes_ambiguous else core
        inside = ndimage.distance_transform_edt(truth)
        outside = ndimage.distance_transform_edt(~truth)
        signed = np.where(truth, -inside + 0.5, outside - 0.5)  # < 0 inside, pixel centres at +-0.5
        drawn = signed < rater.boundary_shift
        if rater.smoothing > 0:
            drawn = ndimage.gaussian_filter(drawn.astype(np.float64), rater.smoothing) > 0.5
        masks.append(drawn)
    return RaterPhantom(image, core, ambiguous, tuple(raters), np.stack(masks))


def write_rater_dataset(
    root: str | Path,
    count: int,
    layout: str = "rater_folders",
    seed: int = 0,
    raters: tuple[RaterModel, ...] = RATER_MODELS,
) -> Path:
    """Write ``count`` phantoms (:func:`rater_phantom`, one seeded generator) as a multi-rater dataset
    in ``layout`` (:data:`samia.data.raters.RATER_LAYOUTS`): 8-bit PNG images, PNG masks (label 1),
    or ``.npz`` stacks; a ``dataset.json`` names the raters. Returns ``root``."""
    import json

    from samia.io.image2d import write_image_2d

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    names = [rater.name for rater in raters]
    rng = np.random.default_rng(seed)
    for index in range(count):
        phantom = rater_phantom(rng, raters=raters)
        case = f"phantom_{index:03d}"
        write_image_2d(root / "images" / f"{case}.png", np.round(phantom.image.array * 255).astype(np.uint8))
        if layout == "rater_stack":
            (root / "stacks").mkdir(exist_ok=True)
            np.savez_compressed(root / "stacks" / f"{case}.npz", masks=phantom.masks.astype(np.uint8))
            continue
        for name, mask in zip(names, phantom.masks):
            if layout == "rater_folders":
                path = root / "raters" / name / f"{case}.png"
            else:
                path = root / "masks" / f"{case}_{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image_2d(path, mask.astype(np.uint8))
    description = {"name": "rater_phantoms", "modality": "MR", "labels": {"1": "object"}, "raters": names}
    (root / "dataset.json").write_text(json.dumps(description, indent=1))
    return root
