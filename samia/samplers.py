"""Any promptable model as a sampler of plausible masks, so that a deterministic SAM-family model is
scored on the same distribution metrics as a model built to sample (:mod:`samia.metrics.multirater`).

Three rules, each giving ``(N, H, W)`` bool masks on the image's grid for one prompt:

- :func:`multimask_samples`: SAM's three multimask candidates (``N = 3``), one decoder call.
- :func:`jitter_samples`: the prompt moved at random, each decoded as the single-mask output: a
  box's corners each shifted by up to ``fraction`` of the box's width (x) or height (y), a point
  by up to ``fraction`` of the longer box side (or of the image's longer side without a box), in a
  uniformly drawn direction; the first sample is the prompt unmoved.
- :func:`flip_samples`: test-time augmentation by the eight flips and transpositions of the
  image (the dihedral group), the prompt mapped with the image and each answer mapped back; the
  first is the image as it is. Each transformed image is encoded once (the predictor's cache).

:func:`samia.metrics.multirater.mean_mask` of the samples is a per-pixel probability map.
"""

from __future__ import annotations

import numpy as np

from samia.errors import ConfigurationError
from samia.models import PromptableSegmenter
from samia.predictor import SamiaPredictor
from samia.types import Prompt

FLIPS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (transposed, flip_x, flip_y) for transposed in (False, True) for flip_y in (False, True) for flip_x in (False, True)
)
"""The eight dihedral transforms :func:`flip_samples` uses, in order, as ``(transpose, flip x,
flip y)``: the transposition first, then the flips of the result (the identity first)."""


def multimask_samples(predictor: SamiaPredictor, prompt: Prompt) -> np.ndarray:
    """The three multimask candidates for ``prompt`` on the predictor's current image: ``(3, H, W)``."""
    masks: np.ndarray = predictor.predict(prompt, multimask_output=True).masks
    return masks


def jitter_samples(
    predictor: SamiaPredictor, prompt: Prompt, count: int, rng: np.random.Generator, fraction: float = 0.1
) -> np.ndarray:
    """``count`` single-mask answers to ``prompt`` and its random moves (module docstring): ``(count, H, W)``.

    Raises:
        ConfigurationError: ``count < 1`` or ``fraction`` outside [0, 1].
    """
    if count < 1:
        raise ConfigurationError(f"a sampler needs at least one sample, got {count}")
    if not 0 <= fraction <= 1:
        raise ConfigurationError(f"the jitter fraction must lie in [0, 1], got {fraction}")
    height, width = predictor.geometry.original_shape
    prompts = [prompt] + [_moved(prompt, rng, fraction, (height, width)) for _ in range(count - 1)]
    return np.stack([p.masks[0] for p in predictor.predict_batch(prompts, multimask_output=False)])


def _moved(prompt: Prompt, rng: np.random.Generator, fraction: float, shape: tuple[int, int]) -> Prompt:
    limits = np.array([shape[1] - 1, shape[0] - 1], dtype=np.float64)
    box = None
    if prompt.box is not None:
        original = np.asarray(prompt.box, dtype=np.float64)
        size = np.tile(original[2:] - original[:2] + 1, 2)
        box = np.clip(original + rng.uniform(-fraction, fraction, 4) * size, 0, np.tile(limits, 2))
        box = np.concatenate([np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])])
    points = None
    if prompt.points is not None:
        reference = original[2:] - original[:2] + 1 if prompt.box is not None else np.array(shape[::-1], float)
        reach = fraction * float(reference.max())
        angles = rng.uniform(0, 2 * np.pi, len(prompt.points))
        radii = reach * np.sqrt(rng.uniform(0, 1, len(prompt.points)))
        offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
        points = np.clip(np.asarray(prompt.points, dtype=np.float64) + offsets, 0, limits)
    return Prompt(points=points, labels=prompt.labels, box=box, meta={**prompt.meta, "sampler": "jitter"})


def flip_samples(predictor: SamiaPredictor, image_rgb: np.ndarray, prompt: Prompt, count: int = 8) -> np.ndarray:
    """Single-mask answers to ``prompt`` under the first ``count`` of :data:`FLIPS` (each mapped back to
    the image's grid): ``(count, H, W)``. The predictor's current image is ``image_rgb`` afterwards.

    Raises:
        ConfigurationError: ``count`` outside 1..8.
    """
    if not 1 <= count <= len(FLIPS):
        raise ConfigurationError(f"test-time augmentation has 1..{len(FLIPS)} transforms, got {count}")
    height, width = image_rgb.shape[:2]
    masks = []
    for transposed, flip_x, flip_y in FLIPS[:count]:
        image = np.ascontiguousarray(flip_image(image_rgb, transposed, flip_x, flip_y))
        predictor.set_image(image)
        moved = flip_prompt(prompt, transposed, flip_x, flip_y, (height, width))
        answer = predictor.predict(moved, multimask_output=False).masks[0]
        masks.append(unflip_mask(answer, transposed, flip_x, flip_y))
    predictor.set_image(image_rgb)
    return np.stack(masks)


def flip_image(array: np.ndarray, transposed: bool, flip_x: bool, flip_y: bool) -> np.ndarray:
    """An ``(H, W, ...)`` array under one of :data:`FLIPS`: transposed first (rows <-> columns), then
    the result's columns (x) and rows (y) flipped (a view)."""
    out = np.swapaxes(array, 0, 1) if transposed else array
    if flip_x:
        out = out[:, ::-1]
    if flip_y:
        out = out[::-1]
    return out


def unflip_mask(mask: np.ndarray, transposed: bool, flip_x: bool, flip_y: bool) -> np.ndarray:
    """A mask of the transformed image back on the original grid (the inverse of :func:`flip_image`)."""
    out = mask[::-1] if flip_y else mask
    if flip_x:
        out = out[:, ::-1]
    return np.ascontiguousarray(np.swapaxes(out, 0, 1) if transposed else out)


def _flip_points(xy: np.ndarray, transposed: bool, flip_x: bool, flip_y: bool, shape: tuple[int, int]) -> np.ndarray:
    """``(..., 2)`` pixel ``(x, y)`` of the original image -> the same pixel in the transformed one."""
    height, width = shape
    mapped = xy[..., ::-1].copy() if transposed else xy.copy()
    new_width, new_height = (height, width) if transposed else (width, height)
    if flip_x:
        mapped[..., 0] = new_width - 1 - mapped[..., 0]
    if flip_y:
        mapped[..., 1] = new_height - 1 - mapped[..., 1]
    return mapped


def flip_prompt(prompt: Prompt, transposed: bool, flip_x: bool, flip_y: bool, shape: tuple[int, int]) -> Prompt:
    """``prompt`` on an image of ``shape`` ``(H, W)`` -> the same pixels on :func:`flip_image`'s result."""
    points = None
    if prompt.points is not None:
        points = _flip_points(np.asarray(prompt.points, dtype=np.float64), transposed, flip_x, flip_y, shape)
    box = None
    if prompt.box is not None:
        corners = _flip_points(
            np.asarray(prompt.box, dtype=np.float64).reshape(2, 2), transposed, flip_x, flip_y, shape
        )
        box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    return Prompt(points=points, labels=prompt.labels, box=box, meta={**prompt.meta, "sampler": "flip"})


SAMPLERS = ("single", "multimask", "jitter", "flips")
"""The samplers any model is: ``single`` is the model's one answer (``N = 1``), a deterministic
baseline on the distribution metrics."""

LATENT_SAMPLER = "latent"
"""The sampler of a model trained to sample (``samia finetune --method ua_adapter``): ``N`` codes of
its prior, the first its mean (:func:`samia.models.ua_adapter.latent_samples`)."""


def draw_samples(
    sampler: str,
    predictor: SamiaPredictor,
    image_rgb: np.ndarray,
    prompt: Prompt,
    count: int,
    rng: np.random.Generator,
    jitter_fraction: float = 0.1,
) -> np.ndarray:
    """The masks of one of :data:`SAMPLERS` (or :data:`LATENT_SAMPLER`) for ``prompt`` on
    ``image_rgb`` (the predictor's current image, except for ``latent``, which encodes the image
    itself): ``(N, H, W)`` bool, ``N`` = 1 (``single``), 3 (``multimask``), ``count`` (``jitter``,
    ``latent``) or ``min(count, 8)`` (``flips``).

    Raises:
        ConfigurationError: an unknown sampler name; ``latent`` without a box or on a model
            without a ua_adapter.
    """
    if sampler == LATENT_SAMPLER:
        return latent_mask_samples(predictor.model, image_rgb, prompt, count, rng)
    if sampler == "single":
        return np.asarray(predictor.predict(prompt, multimask_output=False).masks[:1], dtype=bool)
    if sampler == "multimask":
        return multimask_samples(predictor, prompt)
    if sampler == "jitter":
        return jitter_samples(predictor, prompt, count, rng, fraction=jitter_fraction)
    if sampler == "flips":
        return flip_samples(predictor, image_rgb, prompt, count=min(count, len(FLIPS)))
    raise ConfigurationError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")


def latent_mask_samples(
    model: PromptableSegmenter, image_rgb: np.ndarray, prompt: Prompt, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` masks of a ua_adapter model for a box prompt, on the image's grid: ``(count, H, W)``.

    Raises:
        ConfigurationError: no box in ``prompt``; a model without a ua_adapter.
    """
    from samia.models.ua_adapter import latent_samples
    from samia.transforms import input_geometry

    if prompt.box is None:
        raise ConfigurationError("the latent sampler takes a box prompt (its adapters were trained on boxes)")
    geometry = input_geometry(model.input_pipeline, image_rgb.shape[:2], model.input_size)
    box = geometry.boxes_to_input(np.asarray(prompt.box, dtype=np.float64)[None])[0]
    logits = latent_samples(model, geometry.resize_image(image_rgb), box, count, int(rng.integers(2**31)))
    masks: np.ndarray = geometry.logits_to_original(logits[:, 0].float().cpu().numpy()) > model.mask_threshold
    return masks
