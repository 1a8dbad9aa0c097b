"""How one slice's answer prompts the next slice ("projections") and when propagation stops.

Projections (``PropagationSettings.projection``), from the previous slice's answer:

``box`` (the CVPR 2024 baseline's rule, ``CVPR24_LiteMedSAM_infer.py``)
    The previous mask is resized into the model frame (OpenCV ``INTER_AREA`` of the 0/1 mask, zero
    padding: :meth:`~samia.transforms.InputGeometry.mask_to_input`); its tight box there is grown by
    ``margin`` pixels per side (3 px of a 256-pixel frame, scaled for other input sizes) and clipped
    to ``[0, S]``. When the previous mask is empty, in the image or in the frame, the fallback
    prompt (a 3D box's projection, a key slice's own prompt) is used again.
``box_mask``
    That box, plus the previous slice's low-resolution logits as SAM's mask input.
``points``
    A positive point at the interior maximum of the previous mask's distance transform (its
    deepest pixel), and a negative point at the exterior maximum: the pixel of the grown box
    farthest from the mask (none when the box holds no pixel outside the mask).
``mask``
    The previous low-resolution logits alone.

Stop rules, combinable (``PropagationSettings``): the prompt's slice range is always a hard bound;
``min_iou_with_previous`` stops where the new mask's IoU with the previous one falls below it;
``min_predicted_iou`` stops where the model's own IoU estimate does; ``max_empty`` stops after that
many consecutive empty masks. The slice that triggers a threshold rule is dropped (its mask is judged
to have left the object).

Speed levels (:data:`SPEEDS`, ``--speed``) set how densely a chain visits its slices
(:class:`Sampling`): ``accurate`` decodes every slice. A chain of step ``k`` decodes every
``k``-th slice counted from its key slice (and the last slice of its range), each prompted from the
last kept answer; when a decoded slice would stop the chain, or its mask agrees with the last kept
one by Dice < ``refine_below``, that answer is dropped and the slices of the gap are decoded one by
one as ``accurate`` does (stop rules then apply as there), after which sampling resumes. The slices
a kept step skipped are filled by shape-based interpolation between its two ends
(:mod:`samia.volume.fill`), so only about one slice in ``k`` is encoded where the object changes
slowly, and every slice where it does not.

One difference from the baseline, at the edge of what it covers: the baseline resizes the mask
that holds the object's *index* value (so its object ``k`` keeps frame pixels covered to ``1 /
(2k)``); samia resizes a 0/1 mask for every object, as the baseline does for its first. Grown boxes
go to the model as the frame gives them, also where they reach into the padding or to ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samia.errors import ConfigurationError
from samia.transforms.geometry import InputGeometry
from samia.types import Prompt

PROJECTIONS = ("box", "box_mask", "points", "mask")
OUTPUTS = ("single", "predicted_iou")
MARGIN_FRAME = 256
"""The frame size the margin is given in (LiteMedSAM's input side)."""

MASK_LOGIT = 8.0
"""Magnitude of the logits made from a given key-slice mask (inside +, outside -)."""


@dataclass(frozen=True)
class PropagationSettings:
    """How propagation prompts each next slice and when it stops (module docstring).

    Attributes:
        projection: one of :data:`PROJECTIONS`.
        margin: pixels added to each side of the previous mask's box, in a 256-pixel model frame.
        min_iou_with_previous: stop where IoU(new mask, previous mask) < this; None = off.
        min_predicted_iou: stop where the model's predicted IoU < this; None = off.
        max_empty: stop after this many consecutive empty masks; None = off.
        output: ``single`` (the single-mask output, as the baseline) or ``predicted_iou`` (the
            multimask candidate with the highest predicted IoU).
    """

    projection: str = "box"
    margin: float = 3.0
    min_iou_with_previous: float | None = None
    min_predicted_iou: float | None = None
    max_empty: int | None = None
    output: str = "single"

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ConfigurationError(f"unknown projection {self.projection!r}; choose one of {', '.join(PROJECTIONS)}")
        if self.output not in OUTPUTS:
            raise ConfigurationError(f"unknown output {self.output!r}; choose one of {', '.join(OUTPUTS)}")
        if self.margin < 0:
            raise ConfigurationError(f"the margin must be >= 0 pixels, got {self.margin}")
        if self.max_empty is not None and self.max_empty < 1:
            raise ConfigurationError(f"max_empty must be >= 1, got {self.max_empty}")
        for name in ("min_iou_with_previous", "min_predicted_iou"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigurationError(f"{name} must lie in 0..1, got {value}")


@dataclass(frozen=True)
class Sampling:
    """How densely a chain visits its slices (a speed level; module docstring).

    Attributes:
        step: decode every ``step``-th slice from the key slice (1: every slice).
        refine_below: decode a gap slice by slice where its two ends' masks agree by Dice below this.
    """

    step: int = 1
    refine_below: float = 0.9

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ConfigurationError(f"the sampling step must be >= 1 slice, got {self.step}")
        if not 0 <= self.refine_below <= 1:
            raise ConfigurationError(f"refine_below must lie in 0..1, got {self.refine_below}")


SPEEDS: dict[str, Sampling] = {"accurate": Sampling(1), "default": Sampling(1), "fast": Sampling(3)}
"""The speed levels (``--speed``); their Dice against ``accurate`` is measured by
``benchmarks/volume_speed.py`` (docs/guides/cpu.md)."""


def sampling_for(speed: str | Sampling) -> Sampling:
    """The sampling of a speed level (its name, or a :class:`Sampling` itself).

    Raises:
        ConfigurationError: not one of :data:`SPEEDS`.
    """
    if isinstance(speed, Sampling):
        return speed
    if speed not in SPEEDS:
        raise ConfigurationError(f"unknown speed {speed!r}; choose one of {', '.join(SPEEDS)}")
    return SPEEDS[speed]


BOX3D_SETTINGS = PropagationSettings()
"""A 3D box: the CVPR 2024 rule exactly (box projection, 3 px margin, the box's range, no other stop)."""

KEY_SLICE_SETTINGS = PropagationSettings(min_iou_with_previous=0.5, max_empty=1)
"""Key slices: box projection; without a range of its own, propagation stops at the first empty mask
or where a mask overlaps the previous one by IoU < 0.5 (the object has ended or been lost)."""


@dataclass(frozen=True, eq=False)
class SliceAnswer:
    """One object's answer on one slice.

    Attributes:
        mask: ``(H, W)`` bool on the plane's grid.
        low_res_logits: ``(L, L)`` float32 logits in the model's low-resolution frame.
        predicted_iou: the model's estimate; NaN for a given mask.
    """

    mask: np.ndarray
    low_res_logits: np.ndarray
    predicted_iou: float


def mask_answer(mask: np.ndarray, geometry: InputGeometry, low_res_size: int) -> SliceAnswer:
    """A given mask as an answer: logits of +/- :data:`MASK_LOGIT` in the low-resolution frame."""
    import cv2

    framed = geometry.mask_to_input(mask).astype(np.float32)
    low = cv2.resize(framed, (low_res_size, low_res_size), interpolation=cv2.INTER_AREA)
    return SliceAnswer(mask, ((low > 0.5) * 2.0 - 1.0).astype(np.float32) * MASK_LOGIT, float("nan"))


def next_prompt(
    previous: SliceAnswer, fallback: Prompt | None, geometry: InputGeometry, settings: PropagationSettings
) -> Prompt | None:
    """The prompt of the next slice from the previous slice's answer (module docstring); the
    ``fallback`` when the previous mask is empty (None: nothing to prompt with)."""
    if not previous.mask.any():
        return fallback
    if settings.projection == "mask":
        return Prompt(mask_input=previous.low_res_logits, meta={"projection": "mask"})
    box = grown_box(previous.mask, geometry, settings.margin)
    if box is None:
        return fallback
    if settings.projection == "box":
        return Prompt(box=box, meta={"projection": "box"})
    if settings.projection == "box_mask":
        return Prompt(box=box, mask_input=previous.low_res_logits, meta={"projection": "box_mask"})
    return _extreme_points(previous.mask, box)


def grown_box(mask: np.ndarray, geometry: InputGeometry, margin: float) -> np.ndarray | None:
    """The mask's box in the model frame, grown by ``margin`` (256-frame pixels) and clipped to
    ``[0, S]``, in original pixels; None when the mask vanishes in the frame."""
    framed = geometry.mask_to_input(mask)
    rows, cols = np.flatnonzero(framed.any(axis=1)), np.flatnonzero(framed.any(axis=0))
    if rows.size == 0:
        return None
    side = geometry.input_size
    shift = margin * side / MARGIN_FRAME
    frame_box = np.array(
        [max(0, cols[0] - shift), max(0, rows[0] - shift), min(side, cols[-1] + shift), min(side, rows[-1] + shift)]
    )
    return geometry.boxes_from_input(frame_box)


def _extreme_points(mask: np.ndarray, box: np.ndarray) -> Prompt:
    from scipy import ndimage  # here: a 2D segment that never propagates does not pay its import

    height, width = mask.shape
    inside = ndimage.distance_transform_edt(mask)
    y, x = np.unravel_index(int(np.argmax(inside)), mask.shape)
    points, labels = [[float(x), float(y)]], [1]
    x0, y0 = int(np.clip(np.floor(box[0]), 0, width - 1)), int(np.clip(np.floor(box[1]), 0, height - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]), 0, width - 1)), int(np.clip(np.ceil(box[3]), 0, height - 1))
    region = np.zeros_like(mask)
    region[y0 : y1 + 1, x0 : x1 + 1] = True
    outside = region & ~mask
    if outside.any():
        distance = np.where(outside, ndimage.distance_transform_edt(~mask), -1.0)
        y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
        points.append([float(x), float(y)])
        labels.append(0)
    return Prompt(points=np.array(points), labels=np.array(labels), meta={"projection": "points"})


def stop_reason(
    answer: SliceAnswer, previous: SliceAnswer, empty_run: int, settings: PropagationSettings
) -> str | None:
    """Why propagation stops at ``answer`` (``empty_run`` counts it when empty), or None to go on."""
    if settings.max_empty is not None and empty_run >= settings.max_empty:
        return f"{empty_run} empty"
    if settings.min_predicted_iou is not None and answer.predicted_iou < settings.min_predicted_iou:
        return f"predicted IoU {answer.predicted_iou:.3f} < {settings.min_predicted_iou:g}"
    if settings.min_iou_with_previous is not None and previous.mask.any() and answer.mask.any():
        union = np.count_nonzero(answer.mask | previous.mask)
        overlap = np.count_nonzero(answer.mask & previous.mask) / union
        if overlap < settings.min_iou_with_previous:
            return f"IoU with previous {overlap:.3f} < {settings.min_iou_with_previous:g}"
    return None
