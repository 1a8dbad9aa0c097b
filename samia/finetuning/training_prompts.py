"""Training prompts: jittered boxes, clicks inside and around the object, clicks on the error region.

Every random choice comes from the ``numpy.random.Generator`` passed in (seeded per epoch and
image by the training loop), so a step's prompts do not depend on process count or order.
Coordinates follow SAM: points ``(x, y)`` and boxes ``(x0, y0, x1, y1)`` (inclusive), in pixels of
the original image unless a function says model-input pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from samia.finetuning.config import PROMPT_KINDS, FinetuneConfig
from samia.prompts import tight_box


@dataclass(frozen=True)
class StepPrompts:
    """One prompt per object of an image, all of the same structure (they are decoded as one batch).

    Attributes:
        kind: one of :data:`~samia.finetuning.config.PROMPT_KINDS`.
        points: ``(K, N, 2)`` float64 ``(x, y)`` original pixels, or None (``box`` kind).
        labels: ``(K, N)`` int64, 1 positive, 0 negative; None iff ``points`` is None.
        boxes: ``(K, 4)`` float64 XYXY original pixels, or None (``points`` kind).
    """

    kind: str
    points: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None


def jittered_box(mask: np.ndarray, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    """The tight box of ``mask`` with each coordinate moved by ``U(-max_shift, max_shift)`` pixels.

    The result is clipped to the image and reordered so that ``x0 <= x1`` and ``y0 <= y1``.

    Args:
        mask: ``(H, W)`` bool, not empty.
        rng: source of the offsets.
        max_shift: largest offset, pixels (0 gives the tight box).

    Returns:
        ``(4,)`` float64 ``(x0, y0, x1, y1)``.
    """
    box = tight_box(mask) + rng.uniform(-max_shift, max_shift, 4)
    height, width = mask.shape
    xs = np.clip(np.sort(box[[0, 2]]), 0, width - 1)
    ys = np.clip(np.sort(box[[1, 3]]), 0, height - 1)
    return np.array([xs[0], ys[0], xs[1], ys[1]])


def _pick(region: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, 2)`` ``(x, y)`` of pixels drawn uniformly from ``region`` (without replacement when it can)."""
    ys, xs = np.nonzero(region)
    chosen = rng.choice(len(xs), size=count, replace=count > len(xs))
    return np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.float64)


def background_ring(mask: np.ndarray, margin: int) -> np.ndarray:
    """``(H, W)`` bool: pixels outside ``mask`` within ``margin`` pixels (8-connected steps) of it.

    Falls back to the whole background when the ring is empty (``margin`` 0), and to the mask
    itself when there is no background at all.
    """
    if margin > 0:
        dilated = ndimage.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool), iterations=margin)
        ring = dilated & ~mask
        if ring.any():
            return ring
    return ~mask if (~mask).any() else mask


class TrainingPromptSampler:
    """Draws one prompt per object for a training step.

    Per call (one image, one step) a kind is drawn uniformly from ``kinds``; every object then
    gets a prompt of that kind, with the same number of clicks, so the batch stacks:

    - ``box``: :func:`jittered_box`;
    - ``points``: ``P ~ U{1..max_positive}`` positive clicks uniformly inside the object and
      ``Q ~ U{0..max_negative}`` negative clicks uniformly in its :func:`background_ring`;
    - ``box_points``: both.

    Args:
        kinds: subset of :data:`~samia.finetuning.config.PROMPT_KINDS`.
        box_jitter_px: largest box coordinate offset, original pixels.
        max_positive: largest number of positive clicks (>= 1).
        max_negative: largest number of negative clicks (>= 0).
        negative_margin_px: width of the ring negatives are drawn from, pixels.
    """

    def __init__(
        self, kinds: Sequence[str], box_jitter_px: float, max_positive: int, max_negative: int, negative_margin_px: int
    ) -> None:
        unknown = [k for k in kinds if k not in PROMPT_KINDS]
        if unknown or not kinds:
            raise ValueError(f"prompt kinds must be some of {PROMPT_KINDS}, got {list(kinds)}")
        self.kinds = tuple(kinds)
        self.box_jitter_px = float(box_jitter_px)
        self.max_positive = int(max_positive)
        self.max_negative = int(max_negative)
        self.negative_margin_px = int(negative_margin_px)

    @classmethod
    def from_config(cls, config: FinetuneConfig) -> TrainingPromptSampler:
        return cls(
            config.training.prompt_kinds,
            config.training.box_jitter_px,
            config.training.max_positive_points,
            config.training.max_negative_points,
            config.training.negative_margin_px,
        )

    def __call__(self, masks: np.ndarray, rng: np.random.Generator) -> StepPrompts:
        """Prompts for ``masks`` (``(K, H, W)`` bool, each non-empty)."""
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        boxes = points = labels = None
        if kind in ("box", "box_points"):
            boxes = np.stack([jittered_box(mask, rng, self.box_jitter_px) for mask in masks])
        if kind in ("points", "box_points"):
            n_pos = int(rng.integers(1, self.max_positive + 1))
            n_neg = int(rng.integers(0, self.max_negative + 1))
            points = np.stack(
                [
                    np.concatenate(
                        [_pick(mask, n_pos, rng), _pick(background_ring(mask, self.negative_margin_px), n_neg, rng)]
                    )
                    for mask in masks
                ]
            )
            labels = np.tile(np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.int64), (len(masks), 1))
        return StepPrompts(kind, points, labels, boxes)


def error_region_clicks(
    predicted: torch.Tensor, targets: torch.Tensor, rng: np.random.Generator, input_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per prompt, drawn uniformly from the error region (SAM's training rule).

    A click on a missed object cell is positive, on a false-alarm cell negative. Without any error,
    the click is a positive one inside the object (the cell most covered by it when no cell is
    half covered).

    Args:
        predicted: ``(B, L, L)`` bool predicted masks on the low-resolution grid.
        targets: ``(B, L, L)`` float soft ground truth on that grid (object where ``>= 0.5``).
        rng: source of the choices.
        input_size: ``S``, to place the click at its cell's centre in model-input pixels.

    Returns:
        ``(points, labels)``: ``(B, 1, 2)`` float32 ``(x, y)`` model-input pixels and ``(B, 1)`` int64.
    """
    side = predicted.shape[-1]
    truth = (targets >= 0.5).cpu().numpy().reshape(len(targets), -1)
    errors = predicted.cpu().numpy().reshape(len(targets), -1) ^ truth
    cover = targets.detach().cpu().numpy().reshape(len(targets), -1)
    cells, labels = [], []
    for b in range(len(truth)):
        if errors[b].any():
            cell = int(rng.choice(np.flatnonzero(errors[b])))
            labels.append(int(truth[b, cell]))
        else:
            cell = int(rng.choice(np.flatnonzero(truth[b]))) if truth[b].any() else int(np.argmax(cover[b]))
            labels.append(1)
        cells.append(cell)
    rows, cols = np.divmod(np.asarray(cells), side)
    scale = input_size / side
    points = np.stack([(cols + 0.5) * scale, (rows + 0.5) * scale], axis=1)[:, None]
    return torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64)[:, None]
