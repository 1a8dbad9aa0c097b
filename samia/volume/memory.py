"""Segment objects through a volume with SAM 2's memory bank (SAM 2.1, MedSAM2).

Where :mod:`samia.volume.engine` prompts each slice from its neighbour's mask, a SAM 2 model tracks
the object as through video frames: ``sam2``'s ``SAM2VideoPredictor`` (its memory encoder, memory
attention over the prompted slices and the last six tracked ones, object pointers and object
scores) runs on the volume's slices, whose features come from samia's embedding cache (each slice
encoded once, shared by every object, pass and correction; :mod:`samia.models.sam2_tracker`).

For each object, MedSAM2's rule (``medsam2_infer_3D_CT.py``), for every SAM 2 model:

1. every prompted slice is a *conditioning frame*: a key slice's box and/or clicks (a 3D box: its
   projection on its middle slice, the CVPR rule), or its given mask;
2. a forward pass tracks from the lowest prompted slice to the end of the range, every
   conditioning frame in memory (so a gap between two key slices is tracked towards the upper one
   while attending to it);
3. the state is reset, the same prompts added again, and a reverse pass tracks from the highest
   prompted slice down to the start of the range;
4. the object is the union of the two passes' masks (logits > 0 on the slice grid, after
   ``sam2``'s bilinear resize of the low-resolution logits); with ``largest_component`` (MedSAM2)
   only its largest 26-connected component is kept.

Stop rules end a pass early (its remaining slices stay empty): the model's object score (logit <= 0
means SAM 2 judges the object absent from that slice), and samia's ``max_empty`` and
``min_iou_with_previous`` (the slice that breaks the IoU rule is dropped). A 3D box or a prompt's
``bounds`` bound both passes. A correction is the object prompted again with its new key slices
(e.g. ``box3d_clicks``' clicked slices): both passes run again from every key slice; only the
encoder work is saved. A deadline ends both passes where they are (the answer is marked
unfinished).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from samia.errors import ConfigurationError
from samia.types import Prompt
from samia.volume.engine import ObjectVolume, SliceStep, VolumeSegmentation, checked_keys, segment_volume
from samia.volume.prompts import KeySlice, VolumePrompt
from samia.volume.propagation import BOX3D_SETTINGS, KEY_SLICE_SETTINGS, PropagationSettings
from samia.volume.session import VolumeSession

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class MemorySettings:
    """Stop rules and post-processing of memory propagation (module docstring).

    Attributes:
        stop_on_object_score: a pass stops at the first tracked slice whose object score logit is
            <= 0 (SAM 2's "object absent"; its mask is empty).
        max_empty: stop after this many consecutive empty tracked masks; None = off.
        min_iou_with_previous: stop where a tracked mask's IoU with the previous slice's falls below
            this (that slice dropped); None = off.
        largest_component: keep only the largest 26-connected component of the union (MedSAM2).
    """

    stop_on_object_score: bool = True
    max_empty: int | None = None
    min_iou_with_previous: float | None = None
    largest_component: bool = False

    def __post_init__(self) -> None:
        if self.max_empty is not None and self.max_empty < 1:
            raise ConfigurationError(f"max_empty must be >= 1, got {self.max_empty}")
        value = self.min_iou_with_previous
        if value is not None and not 0 <= value <= 1:
            raise ConfigurationError(f"min_iou_with_previous must lie in 0..1, got {value}")


MEMORY_SETTINGS = MemorySettings()
"""samia's default: stop where SAM 2's object score says the object has left."""

MEDSAM2_SETTINGS = MemorySettings(stop_on_object_score=False, largest_component=True)
"""``medsam2_infer_3D_CT.py``: both passes to the ends of the volume, the largest component kept."""

OBJECT_ID = 1
"""The object id each per-object tracking state holds."""


def segment_volume_with_memory(
    session: VolumeSession,
    prompts: Sequence[VolumePrompt],
    settings: MemorySettings = MEMORY_SETTINGS,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
    keep_logits: bool = False,
) -> VolumeSegmentation:
    """Segment one object per prompt through the session's volume by SAM 2 memory propagation.

    Args:
        session: the volume under a SAM 2 family model (:class:`~samia.models.sam2_family.Sam2Segmenter`).
        prompts: one per object (``current`` masks are not used: every key slice is prompted again).
        settings: stop rules and post-processing.
        progress: called after each tracked slice with ``(slices done, slices planned)``.
        deadline: ``time.monotonic()`` seconds after which no pass tracks another slice.
        keep_logits: also return each object's logits (``ObjectVolume.logits``, before the
            largest-component rule; 4 bytes per voxel and object).

    Returns:
        The objects' ``(Z, Y, X)`` masks and per-slice steps (``source`` ``key``, ``mask``, ``up``
        for the forward pass, ``down`` for the reverse one; ``prompt["object_score"]`` the model's
        object score logit; ``predicted_iou`` NaN, which the tracker does not give).

    Raises:
        ConfigurationError: the model is not of the SAM 2 family, or a prompt does not fit the
            volume (as :func:`~samia.volume.engine.segment_volume`).
    """
    from samia.models.sam2_family import Sam2Segmenter

    model = session.predictor.model
    if not isinstance(model, Sam2Segmenter):
        raise ConfigurationError(
            f"memory propagation needs a SAM 2 family model (sam2.1_*, medsam2, tiny_sam2), not {model.name}"
        )
    encoded_before = session.slices_encoded
    checked = [checked_keys(session, prompt) for prompt in prompts]
    visits = [_visits(prompt, low, high, keys) for prompt, (low, high, keys) in zip(prompts, checked)]
    planned = sum(len(keys) + len(forward) + len(reverse) for keys, forward, reverse in visits)
    tracker = _Tracker(session, model, progress, planned, deadline, keep_logits, _revisited(visits))
    objects = [tracker.object(prompt, *plan, settings) for prompt, plan in zip(prompts, checked)]
    encoded = session.slices_encoded - encoded_before
    return VolumeSegmentation(objects, encoded, tracker.done, finished=not tracker.cut)


def _visits(prompt: VolumePrompt, low: int, high: int, keys: list[KeySlice]) -> tuple[set[int], set[int], set[int]]:
    """The key slices of one object, and the other slices its forward and reverse passes track."""
    indices = {key.index for key in keys}
    if not prompt.propagate:
        return indices, set(), set()
    return indices, set(range(min(indices), high + 1)) - indices, set(range(low, max(indices) + 1)) - indices


def _revisited(visits: list[tuple[set[int], set[int], set[int]]]) -> set[int]:
    """The slices whose features are asked for again after their first use (kept on disk): key
    slices (both passes prompt them), slices both passes of an object track, and slices of more
    than one object."""
    again: set[int] = set()
    seen: set[int] = set()
    for keys, forward, reverse in visits:
        used = keys | forward | reverse
        again |= keys | (forward & reverse) | (used & seen)
        seen |= used
    return again


class _Tracker:
    """Runs each object's passes through one ``sam2`` tracking state over the session's slices."""

    def __init__(
        self,
        session: VolumeSession,
        model: Any,
        progress: Callable[[int, int], None] | None,
        planned: int,
        deadline: float | None,
        keep_logits: bool,
        revisited: set[int],
    ) -> None:
        from samia.models.sam2_tracker import new_inference_state

        self.session = session
        self.model = model
        self.predictor = model.tracker
        self.progress = progress
        self.planned = planned
        self.deadline = deadline
        self.keep_logits = keep_logits
        self.revisited = revisited
        self.done = 0
        self.cut = False
        height, width = session.plane_shape
        self.state = new_inference_state(self.predictor, session.depth, height, width, self._features)

    def _features(self, index: int) -> dict[str, Any]:
        import torch

        self.session.use(index, again=index in self.revisited)
        features: dict[str, Any] = self.model.backbone_out(torch.from_numpy(self.session.predictor.image_embedding))
        return features

    def object(
        self, prompt: VolumePrompt, low: int, high: int, checked: list[KeySlice], settings: MemorySettings
    ) -> ObjectVolume:
        keys: dict[int, Prompt | np.ndarray] = {
            key.index: key.mask if key.mask is not None else key.prompt  # type: ignore[misc]
            for key in checked
        }
        shape = self.session.volume.shape
        result = ObjectVolume(np.zeros(shape, dtype=bool), sorted(keys))
        if self.keep_logits:
            result.logits = np.full(shape, -np.inf, dtype=np.float32)
        for index, key_prompt in keys.items():  # each key's answer, from its prompt alone
            if not prompt.propagate:
                self.predictor.reset_state(self.state)
            self._keep(result, index, "key", key_prompt, self._prompt(index, key_prompt), None)
            self._visited()
        if prompt.propagate:
            for reverse in (False, True):
                if reverse:
                    self.predictor.reset_state(self.state)
                    for index, key_prompt in keys.items():
                        self._prompt(index, key_prompt)
                start = max(keys) if reverse else min(keys)
                count = (start - low) if reverse else (high - start)
                if not self.cut:
                    self._pass(result, keys, start, count, reverse, settings)
        if settings.largest_component and result.mask.any():
            result.mask[...] = _largest_component(result.mask)
        self.predictor.reset_state(self.state)
        return result

    def _prompt(self, index: int, prompt: Prompt | np.ndarray) -> torch.Tensor:
        """Add a key slice's prompt (or mask) as a conditioning frame; its ``(H, W)`` logits."""
        import torch

        if isinstance(prompt, np.ndarray):
            _, _, logits = self.predictor.add_new_mask(self.state, index, OBJECT_ID, torch.from_numpy(prompt))
        else:
            points = None if prompt.points is None else torch.as_tensor(prompt.points, dtype=torch.float32)
            labels = None if prompt.labels is None else torch.as_tensor(prompt.labels, dtype=torch.int32)
            box = None if prompt.box is None else torch.as_tensor(prompt.box, dtype=torch.float32)
            _, _, logits = self.predictor.add_new_points_or_box(
                self.state, index, OBJECT_ID, points=points, labels=labels, box=box
            )
        return logits[0, 0]

    def _pass(
        self,
        result: ObjectVolume,
        keys: dict[int, Prompt | np.ndarray],
        start: int,
        count: int,
        reverse: bool,
        settings: MemorySettings,
    ) -> None:
        direction = "down" if reverse else "up"
        previous: np.ndarray | None = None
        empty_run = 0
        frames = self.predictor.propagate_in_video(
            self.state, start_frame_idx=start, max_frame_num_to_track=count, reverse=reverse
        )
        for index, _, logits in frames:
            if index in keys:  # conditioning frames are answered already
                previous, empty_run = (logits[0, 0] > 0.0).numpy(), 0
                continue
            mask = (logits[0, 0] > 0.0).numpy()
            score = self._object_score(index)
            self._visited()
            empty_run = 0 if mask.any() else empty_run + 1
            reason = _stop_reason(mask, previous, empty_run, score, settings)
            if reason is not None and reason.startswith("iou"):
                result.steps.append(SliceStep(index, direction, _record(None, score), math.nan, 0, reason))
                break
            self._keep(result, index, direction, None, logits[0, 0], score, reason)
            previous = mask
            if reason is not None or self._past_deadline():
                break
        frames.close()

    def _object_score(self, index: int) -> float:
        outputs = self.state["output_dict_per_obj"][0]
        out = outputs["cond_frame_outputs"].get(index) or outputs["non_cond_frame_outputs"][index]
        return float(out["object_score_logits"].reshape(-1)[0])

    def _keep(
        self,
        result: ObjectVolume,
        index: int,
        source: str,
        prompt: Prompt | np.ndarray | None,
        logits: torch.Tensor,
        score: float | None,
        stop: str | None = None,
    ) -> None:
        mask = (logits > 0.0).numpy()
        axis = self.session.axis
        np.moveaxis(result.mask, axis, 0)[index] |= mask  # a view: writes reach the volume
        if result.logits is not None:
            plane = np.moveaxis(result.logits, axis, 0)
            plane[index] = np.maximum(plane[index], logits.numpy())
        if isinstance(prompt, np.ndarray):
            source, prompt = "mask", None
        area = int(np.count_nonzero(mask))
        result.steps.append(SliceStep(index, source, _record(prompt, score), math.nan, area, stop))

    def _visited(self) -> None:
        self.done += 1
        self.planned = max(self.planned, self.done)
        if self.progress is not None:
            self.progress(self.done, self.planned)

    def _past_deadline(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.cut = True
        return self.cut


def _stop_reason(
    mask: np.ndarray, previous: np.ndarray | None, empty_run: int, score: float, settings: MemorySettings
) -> str | None:
    if settings.min_iou_with_previous is not None and previous is not None:
        union = np.count_nonzero(mask | previous)
        iou = 1.0 if union == 0 else np.count_nonzero(mask & previous) / union
        if iou < settings.min_iou_with_previous:
            return f"iou with previous {iou:.3f} < {settings.min_iou_with_previous}"
    if settings.stop_on_object_score and score <= 0.0:
        return f"object score {score:.2f} <= 0"
    if settings.max_empty is not None and empty_run >= settings.max_empty:
        return f"{empty_run} empty masks"
    return None


def _record(prompt: Prompt | None, score: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {"projection": "memory"} if prompt is None else {**prompt.to_record(), "projection": "key"}
    if score is not None:
        record["object_score"] = score
    return record


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a non-empty 3D bool mask."""
    from scipy import ndimage

    components, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest: np.ndarray = components == int(np.argmax(sizes))
    return largest


TRACKING = ("auto", "memory", "slices")
"""``--tracking``: SAM 2's memory bank, samia's slice-by-slice engine, or ``auto`` (memory for the
SAM 2 family, slices for every other model)."""

_MEMORY_RULES = ("min_iou_with_previous", "max_empty")
"""The stop rules both engines have (the others are the slice engine's own)."""


def volume_settings(
    model: Any, tracking: str, box3d: bool, overrides: dict[str, Any] | None = None
) -> PropagationSettings | MemorySettings:
    """The settings that pick the engine for ``model``: :class:`MemorySettings` (the model's own
    reference rule: :data:`MEDSAM2_SETTINGS` for ``medsam2``, else :data:`MEMORY_SETTINGS`) or the slice
    engine's defaults for a 3D box or key slices, each with ``overrides`` (option name -> value).

    Raises:
        ConfigurationError: an unknown ``tracking``, or an override the chosen engine does not have.
    """
    if tracking not in TRACKING:
        raise ConfigurationError(f"unknown tracking {tracking!r}; choose one of {', '.join(TRACKING)}")
    overrides = overrides or {}
    if tracking == "memory" or (tracking == "auto" and hasattr(model, "tracker")):  # a Sam2Segmenter
        others = sorted(set(overrides) - set(_MEMORY_RULES))
        if others:
            names = ", ".join("--" + name.replace("_", "-") for name in others)
            raise ConfigurationError(
                f"{names}: slice-engine options; memory tracking takes none (use --tracking slices)"
            )
        return replace(MEDSAM2_SETTINGS if model.name == "medsam2" else MEMORY_SETTINGS, **overrides)
    return replace(BOX3D_SETTINGS if box3d else KEY_SLICE_SETTINGS, **overrides)


def segment_volume_for_model(
    session: VolumeSession, prompts: Sequence[VolumePrompt], deadline: float | None = None
) -> VolumeSegmentation:
    """Segment through the volume by the model's own engine: SAM 2 family models track with their
    memory (the model's reference rule; corrections run again from every key slice), every other
    model goes through the slice engine with its defaults (corrections re-propagate only what
    they change). The annotation page and ``samia serve`` segment this way."""
    settings = volume_settings(session.predictor.model, "auto", any(p.box3d is not None for p in prompts))
    if isinstance(settings, MemorySettings):
        return segment_volume_with_memory(session, prompts, settings, deadline=deadline)
    return segment_volume(session, prompts, deadline=deadline)
