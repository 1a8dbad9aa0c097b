"""Segment objects through a volume from 3D boxes or key slices, slice by slice, with a 2D model.

Each object's prompt becomes key slices and *chains* (runs of slices, each prompted from its
neighbour's answer, :mod:`samia.volume.propagation`):

- a 3D box ``[x0, y0, z0, x1, y1, z1]``: the CVPR 2024 baseline's rule. The middle slice
  ``z_mid = int((z1 - z0) / 2 + z0)`` is prompted with the box's 2D projection; one chain runs up
  from ``z_mid + 1`` to ``z1`` and one down from ``z_mid - 1`` to ``z0``, both inclusive; when the
  previous mask is empty the projected box is used again.
- one key slice: chains up and down from it to the prompt's bounds (the volume by default).
- several key slices: as micro-sam segments between annotated slices, each gap is filled from both
  ends (up from the lower key to the gap's middle, down from the upper key to just above it), and
  chains run outward from the outermost keys.

Work is scheduled so that every object on a slice is decoded in one batch and each slice is encoded
at most once (:class:`~samia.volume.session.VolumeSession`): one upward sweep decodes the key
slices and the upward chains, always the lowest slice some chain waits for next, one downward
sweep the downward chains from the top (a slice both sweeps reach is kept on disk between them); a
slice that no active chain reaches is never encoded. A speed level other than ``accurate`` samples
the chains (:class:`~samia.volume.propagation.Sampling`: every k-th slice, gaps that disagree
decoded slice by slice, the rest filled by :mod:`samia.volume.fill`). A correction
(``VolumePrompt.current``) stops each chain where it has stopped changing the object. A
*deadline* ends every chain where it is once it passes (key slices are always decoded): the answer
is then marked unfinished, and a caller that must reply in time (a viewer's server) runs again to
finish. Masks are written in the volume's own ``(Z, Y, X)`` order whatever the slicing axis.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from samia.errors import ConfigurationError
from samia.transforms import input_geometry
from samia.types import Prompt
from samia.volume.fill import interpolate_masks
from samia.volume.prompts import KeySlice, VolumePrompt
from samia.volume.propagation import (
    BOX3D_SETTINGS,
    KEY_SLICE_SETTINGS,
    PropagationSettings,
    Sampling,
    SliceAnswer,
    mask_answer,
    next_prompt,
    sampling_for,
    stop_reason,
)
from samia.volume.session import VolumeSession


@dataclass(frozen=True)
class SliceStep:
    """What one object got on one slice.

    Attributes:
        slice: index along the slicing axis.
        source: ``key`` (a key slice's prompt), ``mask`` (a given key-slice mask), ``up`` or ``down``
            (decoded by a chain), ``filled`` (between two decoded slices of a sampled chain).
        prompt: the prompt's record (points, labels, box in the plane's pixels) and its projection.
        predicted_iou: the model's estimate (NaN for a given or filled mask).
        area: pixels of the kept mask (0 when the slice was dropped by a stop rule).
        stop: why propagation stopped on this slice, else None.
    """

    slice: int
    source: str
    prompt: dict[str, Any]
    predicted_iou: float
    area: int
    stop: str | None = None


@dataclass
class ObjectVolume:
    """One object's answer: its ``(Z, Y, X)`` bool mask, key slices and per-slice steps; ``logits``
    the ``(Z, Y, X)`` float32 mask logits where the caller asked for them (memory propagation:
    the larger of its two passes', ``-inf`` on slices neither reached), else None."""

    mask: np.ndarray
    key_slices: list[int]
    steps: list[SliceStep] = field(default_factory=list)
    logits: np.ndarray | None = None


@dataclass
class VolumeSegmentation:
    """The answer for every object of one :func:`segment_volume` call.

    Attributes:
        objects: in the order of the prompts.
        slices_encoded: encoder calls this call made (slices already encoded in the session cost 0).
        decodings: prompts decoded (one per object and slice reached).
        finished: False when the deadline ended chains before their stop rules or range did
            (their slices beyond are empty, or for a correction as the current mask has them).
    """

    objects: list[ObjectVolume]
    slices_encoded: int
    decodings: int
    finished: bool = True

    def label_map(self) -> np.ndarray:
        """``(Z, Y, X)`` labels ``1..N`` (uint8, uint16 beyond 255 objects); where objects overlap the
        later one wins, as the CVPR 2024 baseline writes its ``segs``."""
        shape = self.objects[0].mask.shape if self.objects else (0, 0, 0)
        labels = np.zeros(shape, dtype=np.uint16 if len(self.objects) > 255 else np.uint8)
        for number, obj in enumerate(self.objects, start=1):
            labels[obj.mask] = number
        return labels


@dataclass(eq=False)
class _Key:
    obj: int
    index: int
    prompt: Prompt | None
    mask: np.ndarray | None
    settings: PropagationSettings
    settled: bool = False
    answer: SliceAnswer | None = None


CONVERGED_CHANGE = 0.01
"""A correction's chain has converged on a slice where its mask differs from the current one in
fewer than this fraction of the object's pixels there ..."""
CONVERGED_SLICES = 2
"""... on this many consecutive slices."""


@dataclass(eq=False)
class _Chain:
    """One object's run of slices away from a key slice, in visiting order.

    ``position`` indexes ``slices`` (the next to decode), ``kept`` the last slice whose answer was
    kept (-1: the seed). With a step above 1 the chain visits the slices whose index is a multiple
    of the step (shared by all objects, so they share encoder calls) and its range's last slice;
    ``dense_until`` is the position up to which a disagreeing gap is decoded slice by slice.
    """

    obj: int
    seed: _Key
    slices: list[int]
    direction: str
    settings: PropagationSettings
    step: int = 1
    current: np.ndarray | None = None
    position: int = 0
    kept: int = -1
    dense_until: int = -1
    previous: SliceAnswer | None = None
    empty_run: int = 0
    converged_run: int = 0
    stopped: bool = False
    sampled: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        last = len(self.slices) - 1
        self.sampled = [p for p, z in enumerate(self.slices) if z % self.step == 0 or p == last]
        self.position = self.sampled[0] if self.sampled else 0

    @property
    def next_slice(self) -> int | None:
        if self.stopped or self.position >= len(self.slices):
            return None
        return self.slices[self.position]

    @property
    def planned_slices(self) -> list[int]:
        """The slices it will visit if no gap is refined."""
        return [self.slices[p] for p in self.sampled]

    @property
    def jumped(self) -> bool:
        """The next slice is not next to the last kept one."""
        return self.position - self.kept > 1

    def advance(self) -> None:
        """Keep the answer at ``position`` and move to the next slice to decode."""
        self.kept = self.position
        if self.position < self.dense_until:
            self.position += 1
        else:
            self.position = next((p for p in self.sampled if p > self.position), len(self.slices))

    def refine(self) -> int:
        """Drop the answer at ``position`` and decode the gap before it slice by slice; returns the
        slices added to the plan."""
        self.dense_until = self.position
        added = self.position - self.kept - 1
        self.position = self.kept + 1
        return added


def segment_volume(
    session: VolumeSession,
    prompts: Sequence[VolumePrompt],
    settings: PropagationSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    speed: str | Sampling = "accurate",
    deadline: float | None = None,
) -> VolumeSegmentation:
    """Segment one object per prompt through the session's volume (module docstring).

    Args:
        session: the volume under its model.
        prompts: one per object.
        settings: projection and stop rules for every object; None = :data:`BOX3D_SETTINGS` for a
            3D box (the CVPR 2024 rule) and :data:`KEY_SLICE_SETTINGS` for key slices.
        progress: called after each slice visit with ``(visits done, visits planned)``; a visit
            decodes every object that reaches the slice, and the plan counts the upward and the
            downward sweep (objects that stop early make the last visits quick; a sampled chain's
            refined gaps add to the plan as they are found).
        speed: a level of :data:`~samia.volume.propagation.SPEEDS` or a sampling of one's own;
            ``accurate`` decodes every slice a chain reaches (the CVPR 2024 rule for a 3D box).
        deadline: ``time.monotonic()`` seconds after which no chain decodes another slice (the
            key slices are decoded all the same); None = none.

    Raises:
        ConfigurationError: a key slice or bound outside the volume, a key slice outside its
            prompt's bounds, a key-slice prompt or mask that does not fit the plane, a current mask
            of another shape than the volume, or an unknown speed.
    """
    sampling = sampling_for(speed)
    encoded_before, decoded_before = session.slices_encoded, session.decodings
    shape = session.volume.shape
    objects = [ObjectVolume(np.zeros(shape, dtype=bool), []) for _ in prompts]
    keys: list[_Key] = []
    chains: list[_Chain] = []
    for number, prompt in enumerate(prompts):
        chosen = settings or (BOX3D_SETTINGS if prompt.box3d is not None else KEY_SLICE_SETTINGS)
        object_keys, object_chains = _plan(session, number, prompt, chosen, sampling.step)
        objects[number].key_slices = [key.index for key in object_keys]
        if prompt.current is not None:
            objects[number].mask[...] = prompt.current
        keys += object_keys
        chains += object_chains
    up = [c for c in chains if c.direction == "up"]
    down = [c for c in chains if c.direction == "down"]
    upward = {key.index for key in keys} | {z for c in up for z in c.planned_slices}
    downward = {z for c in down for z in c.planned_slices}
    # a sampled chain may come back for the slice it refined: keep every slice it decodes
    revisited = None if sampling.step > 1 else upward & downward
    decoder = _Decoder(session, objects, revisited, sampling)
    plan = _Plan(len(upward) + len(downward), progress)
    pending = list(keys)
    cut = _Cut(deadline, chains)
    while (index := _lowest(pending, up)) is not None:
        cut.check()
        decoder.run(index, [key for key in pending if key.index == index], [c for c in up if c.next_slice == index])
        pending = [key for key in pending if key.index != index]
        for chain in chains:
            if chain.previous is None and chain.seed.answer is not None:
                chain.previous = chain.seed.answer
        plan.visited(decoder.take_added())
    while cut.check() and (index := _highest(down)) is not None:
        decoder.run(index, [], [c for c in down if c.next_slice == index])
        plan.visited(decoder.take_added())
    encoded, decoded = session.slices_encoded - encoded_before, session.decodings - decoded_before
    return VolumeSegmentation(objects, encoded, decoded, finished=not cut.happened)


@dataclass
class _Cut:
    """Ends every chain still running once ``deadline`` (monotonic seconds) has passed."""

    deadline: float | None
    chains: list[_Chain]
    happened: bool = False

    def check(self) -> bool:
        """False (and every running chain stopped) once the deadline has passed."""
        if self.deadline is not None and not self.happened and time.monotonic() >= self.deadline:
            running = [chain for chain in self.chains if chain.next_slice is not None]
            for chain in running:
                chain.stopped = True
            self.happened = bool(running)
        return not self.happened


@dataclass
class _Plan:
    """Slice visits planned and done, reported to ``progress``."""

    planned: int
    progress: Callable[[int, int], None] | None
    done: int = 0

    def visited(self, added: int) -> None:
        self.done += 1
        self.planned = max(self.planned + added, self.done)
        if self.progress is not None:
            self.progress(self.done, self.planned)


def _lowest(pending: list[_Key], chains: list[_Chain]) -> int | None:
    """The lowest slice a key slice or an upward chain (once its seed is answered) waits for."""
    waiting = [key.index for key in pending]
    waiting += [c.next_slice for c in chains if c.previous is not None and c.next_slice is not None]
    return min(waiting, default=None)


def _highest(chains: list[_Chain]) -> int | None:
    """The highest slice a downward chain waits for."""
    return max((c.next_slice for c in chains if c.next_slice is not None), default=None)


def checked_keys(session: VolumeSession, prompt: VolumePrompt) -> tuple[int, int, list[KeySlice]]:
    """The inclusive slice range of ``prompt`` along the session's axis and its key slices, their
    prompts fitted to the plane (a 3D box: its projection on its middle slice).

    Raises:
        ConfigurationError: as :func:`segment_volume` says, naming the volume's file.
    """
    source = session.volume.path or "<volume>"
    depth = session.depth
    if prompt.box3d is not None:
        low, high, box = prompt.box3d.along(session.axis)
        keys = [KeySlice(prompt.box3d.middle(session.axis), Prompt(box=box, meta={"projection": "box3d"}))]
    else:
        low, high = prompt.bounds if prompt.bounds is not None else (0, depth - 1)
        keys = list(prompt.key_slices)
    if prompt.current is not None and prompt.current.shape != session.volume.shape:
        raise ConfigurationError(
            f"{source}: the current mask is {prompt.current.shape}, the volume is {session.volume.shape}"
        )
    if not 0 <= low <= high <= depth - 1:
        raise ConfigurationError(
            f"{source}: slice range {low}..{high} is not within 0..{depth - 1} along axis {session.axis}"
        )
    fitted = []
    for key in keys:
        if not low <= key.index <= high:
            raise ConfigurationError(
                f"{source}: key slice {key.index} lies outside the slice range {low}..{high} along axis {session.axis}"
            )
        if key.mask is not None and key.mask.shape != session.plane_shape:
            raise ConfigurationError(
                f"{source}: the mask of key slice {key.index} is {key.mask.shape}, the slices are {session.plane_shape}"
            )
        if key.prompt is not None:
            try:
                key = replace(key, prompt=key.prompt.fitted_to(session.plane_shape))
            except ValueError as error:
                raise ConfigurationError(f"{source}: impossible prompt on slice {key.index}: {error}") from None
        fitted.append(key)
    return low, high, fitted


def _plan(
    session: VolumeSession, number: int, prompt: VolumePrompt, settings: PropagationSettings, step: int = 1
) -> tuple[list[_Key], list[_Chain]]:
    """The key slices and chains of one object's prompt."""
    low, high, checked = checked_keys(session, prompt)
    keys = [_Key(number, key.index, key.prompt, key.mask, settings, key.settled) for key in checked]
    if not prompt.propagate:
        return keys, []
    current = None if prompt.current is None else np.moveaxis(prompt.current, session.axis, 0)
    runs = [(keys[0], list(range(keys[0].index - 1, low - 1, -1)), "down")]
    for lower, upper in zip(keys, keys[1:]):
        middle = (lower.index + upper.index) // 2
        runs.append((lower, list(range(lower.index + 1, middle + 1)), "up"))
        runs.append((upper, list(range(upper.index - 1, middle, -1)), "down"))
    runs.append((keys[-1], list(range(keys[-1].index + 1, high + 1)), "up"))
    if current is not None:  # a correction: settled keys' chains are already in the current mask
        runs = [run for run in runs if not run[0].settled]
    chains = [_Chain(number, seed, slices, direction, settings, step, current) for seed, slices, direction in runs]
    return keys, [chain for chain in chains if chain.slices]


class _Decoder:
    """Decodes the jobs of one slice in one batch per output rule and keeps the answers.

    ``revisited``: the slices to keep on disk for a second visit (None: every slice).
    """

    def __init__(
        self, session: VolumeSession, objects: list[ObjectVolume], revisited: set[int] | None, sampling: Sampling
    ) -> None:
        self.session = session
        self.objects = objects
        self.revisited = revisited
        self.sampling = sampling
        self.added = 0
        model = session.predictor.model
        self.geometry = input_geometry(model.input_pipeline, session.plane_shape, model.input_size)

    def take_added(self) -> int:
        """Slices added to the plan by refined gaps since the last call."""
        added, self.added = self.added, 0
        return added

    def run(self, index: int, keys: list[_Key], chains: list[_Chain]) -> None:
        jobs: list[tuple[_Key | _Chain, Prompt]] = []
        for key in keys:
            if key.mask is not None:
                key.answer = mask_answer(key.mask, self.geometry, self.session.predictor.model.low_res_size)
                self._keep(key.obj, index, "mask", Prompt(), key.answer)
            else:
                jobs.append((key, key.prompt))  # type: ignore[arg-type]
        for chain in chains:
            prompt = next_prompt(chain.previous, chain.seed.prompt, self.geometry, chain.settings)  # type: ignore[arg-type]
            if prompt is None:  # an empty previous mask and no prompt to fall back on
                chain.stopped = True
                continue
            jobs.append((chain, prompt))
        if not jobs:
            return
        self.session.use(index, again=self.revisited is None or index in self.revisited)
        by_output: dict[bool, list[int]] = defaultdict(list)
        for number, (job, _) in enumerate(jobs):
            by_output[job.settings.output == "predicted_iou"].append(number)
        for multimask, numbers in by_output.items():
            # key prompts (and the fallbacks, which are they) were fitted to the plane when planned;
            # propagated boxes come from the model frame and go to the model as they are (they may
            # reach into the padding, as the baseline's do): nothing is fitted again
            predictions = self.session.predictor.predict_batch([jobs[n][1] for n in numbers], multimask, fit=False)
            self.session.decodings += len(numbers)
            for number, prediction in zip(numbers, predictions):
                best = prediction.best_index
                answer = SliceAnswer(
                    prediction.masks[best], prediction.low_res_logits[best], float(prediction.iou_predictions[best])
                )
                self._answer(index, jobs[number][0], jobs[number][1], answer)

    def _answer(self, index: int, job: _Key | _Chain, prompt: Prompt, answer: SliceAnswer) -> None:
        if isinstance(job, _Key):
            job.answer = answer
            self._keep(job.obj, index, "key", prompt, answer)
            return
        previous: SliceAnswer = job.previous  # type: ignore[assignment]
        empty_run = 0 if answer.mask.any() else job.empty_run + 1
        reason = stop_reason(answer, previous, empty_run, job.settings)
        if job.jumped and (reason is not None or _dice(answer.mask, previous.mask) < self.sampling.refine_below):
            self.added += job.refine()
            return
        if reason is not None:
            job.stopped = True
            self.objects[job.obj].steps.append(
                SliceStep(index, job.direction, _record(prompt), answer.predicted_iou, 0, reason)
            )
            if job.current is not None:  # the corrected object now ends here
                self._clear(job, job.slices[job.position :])
            return
        if job.jumped:
            skipped = job.slices[job.kept + 1 : job.position]
            for between, mask in zip(skipped, interpolate_masks(previous.mask, answer.mask, len(skipped))):
                filled = SliceAnswer(mask, answer.low_res_logits, float("nan"))
                self._keep(job.obj, between, "filled", Prompt(meta={"projection": "filled"}), filled)
        job.empty_run = empty_run
        job.previous = answer
        self._keep(job.obj, index, job.direction, prompt, answer)
        job.advance()
        if job.current is not None:
            job.converged_run = job.converged_run + 1 if _unchanged(answer.mask, job.current[index]) else 0
            job.stopped = job.converged_run >= CONVERGED_SLICES

    def _clear(self, chain: _Chain, slices: list[int]) -> None:
        plane = np.moveaxis(self.objects[chain.obj].mask, self.session.axis, 0)
        plane[slices] = False

    def _keep(self, obj: int, index: int, source: str, prompt: Prompt, answer: SliceAnswer) -> None:
        plane = np.moveaxis(self.objects[obj].mask, self.session.axis, 0)  # a view: writes reach the volume
        plane[index] = answer.mask
        area = int(np.count_nonzero(answer.mask))
        self.objects[obj].steps.append(SliceStep(index, source, _record(prompt), answer.predicted_iou, area))


def _dice(first: np.ndarray, second: np.ndarray) -> float:
    """Dice of two masks; 1 when both are empty."""
    total = np.count_nonzero(first) + np.count_nonzero(second)
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(first & second) / total


def _unchanged(new: np.ndarray, current: np.ndarray) -> bool:
    """The new mask differs from the current one in at most :data:`CONVERGED_CHANGE` of the
    object's pixels on this slice (both empty: unchanged)."""
    changed = np.count_nonzero(new ^ current)
    return bool(changed <= CONVERGED_CHANGE * max(np.count_nonzero(new), np.count_nonzero(current)))


def _record(prompt: Prompt) -> dict[str, Any]:
    return {**prompt.to_record(), "projection": prompt.meta.get("projection", "key")}
