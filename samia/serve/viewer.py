"""One viewer's image and the object it is segmenting: interactions in voxel coordinates in, the
changed part of the 3D mask out. Protocol-neutral: the nnInteractive, Slicer and MONAI Label
endpoints all drive this class.

A viewer works in 3D; samia's models are 2D. Every interaction lands on one slice of one
*slicing axis*, chosen once per object: the singleton axis of its first box or lasso (the axis the
user drew on); for an object begun with points or a scribble, the axis of largest spacing, or the
first image axis when the spacing is unknown (a 2D image's is its one-voxel axis). The slice's
prompt (all positive and negative points,
the last box, a lasso's mask) is a key slice of samia's volume engine
(:func:`samia.volume.segment_volume`), which segments that slice and propagates it through the
volume with the key-slice stop rules (the object ends at an empty slice or where a mask overlaps
the previous one by IoU < 0.5). A later interaction is a correction: the engine gets the current
3D mask, skips the key slices whose prompts did not change, and stops each new chain once its
masks differ from the current ones by under 1 % of the object on two consecutive slices (or at
another key slice), so only what the correction changes is decoded. A SAM 2 family model instead
tracks the object with its memory bank from every key slice, forward and in reverse
(:func:`samia.volume.memory.segment_volume_for_model`): a correction runs its passes again (each
slice's features come from the cache, so only the memory attention and decoder run again).

How each interaction becomes a prompt (documented in the "Connect a viewer" guide):

- point: a positive or negative click on its slice, added to that slice's other clicks;
- box (2D, one voxel thick along one axis): the slice's box (a later box on the slice replaces
  it); a negative box erases the object inside it on that slice, which then is a mask key slice;
- scribble: a click every :data:`SCRIBBLE_SPACING` pixels along it (greedily, at most
  :data:`SCRIBBLE_POINTS`), positive or negative as the scribble is;
- lasso: the filled region as SAM's mask input plus its tight box; a negative lasso erases the
  region on its slice (a mask key slice);
- initial segmentation: the object's current mask, which later interactions correct;
- several prompts at once (a client that sends every prompt with each request, as MONAI Label's
  does): one interaction; a 3D region becomes the box of its middle slice along the object's axis,
  propagation kept within the region's slices (the CVPR 2024 rule for a 3D box).

Undo restores the mask, the key slices and the axis as they were before the last interaction.

A viewer waits for a reply: an interaction whose propagation is still running after
``reply_seconds`` answers what it has (the key slices and the slices reached so far) and is
marked unfinished; :meth:`ViewerSession.finish` (or the next interaction) runs it again from all
its key slices, which by then are mostly encoded, so it goes further each time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from samia.errors import ConfigurationError
from samia.predictor import SamiaPredictor
from samia.prompts.primitives import tight_box
from samia.serve import REPLY_SECONDS
from samia.transforms import input_geometry, preset_for
from samia.types import Prompt, Volume
from samia.volume import KeySlice, VolumePrompt, VolumeSession, box3d_of_mask
from samia.volume.memory import segment_volume_for_model
from samia.volume.propagation import mask_answer

SCRIBBLE_SPACING = 5
"""Pixels between the clicks a scribble becomes."""

SCRIBBLE_POINTS = 24
"""Most clicks one scribble becomes."""


@dataclass(frozen=True)
class SliceKey:
    """What the user gave on one slice: clicks ``(x, y, positive)``, the last box ``(x0, y0, x1,
    y1)`` (inclusive plane pixels), a lasso's low-resolution logits and its box, or a drawn
    ``mask`` (after a negative box or lasso; the slice's answer as it is)."""

    points: tuple[tuple[float, float, bool], ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask_input: np.ndarray | None = field(default=None, compare=False)
    mask: np.ndarray | None = field(default=None, compare=False)

    def key_slice(self, index: int, settled: bool) -> KeySlice:
        if self.mask is not None:
            return KeySlice(index, mask=self.mask, settled=settled)
        points = np.array([p[:2] for p in self.points], dtype=np.float64) if self.points else None
        labels = np.array([int(p[2]) for p in self.points]) if self.points else None
        box = None if self.box is None else np.array(self.box, dtype=np.float64)
        prompt = Prompt(points=points, labels=labels, box=box, mask_input=self.mask_input)
        return KeySlice(index, prompt=prompt, settled=settled)

    def digest(self) -> str:
        """SHA-256 of everything the key's answer depends on."""
        parts = [repr((self.points, self.box)).encode()]
        for array in (self.mask_input, self.mask):
            parts.append(b"-" if array is None else np.ascontiguousarray(array).tobytes())
        return hashlib.sha256(b"|".join(parts)).hexdigest()


@dataclass(frozen=True)
class Change:
    """What an interaction did to the object's mask.

    Attributes:
        bbox: ``[[low, high), ...]`` per image axis around every changed voxel; None when no voxel
            changed.
        slices: slices (along ``axis``) whose mask changed.
        axis: the object's slicing axis (None before any interaction).
        decoded: decoder calls it made.
        milliseconds: wall time of the interaction.
        finished: False when the reply deadline ended its propagation early.
    """

    bbox: list[list[int]] | None
    slices: list[int]
    axis: int | None
    decoded: int
    milliseconds: float
    finished: bool = True


@dataclass(frozen=True)
class _Step:
    """The state one interaction replaced (what undo puts back)."""

    mask: np.ndarray
    keys: dict[int, SliceKey]
    axis: int | None
    ran: dict[int, str]
    bounds: tuple[int, int] | None
    finished: bool


class ViewerSession:
    """A 3D image under one model, and the one object being segmented in it.

    Args:
        predictor: this viewer's predictor (its own: a predictor holds one image at a time; the
            embedding cache behind it may be shared).
        image: ``(D0, D1, D2)`` the image's voxels, any real dtype (a 2D image is ``(1, H, W)``).
        spacing: voxel size per axis in mm, or None when the viewer did not say.
        geometry: the image file's geometry (origin, direction, modality) when the client sent a
            file; kept in :attr:`volume` so masks written back land where the image is.
        reply_seconds: propagation time after which an interaction answers what it has.
    """

    def __init__(
        self,
        predictor: SamiaPredictor,
        image: np.ndarray,
        spacing: tuple[float, float, float] | None,
        geometry: Volume | None = None,
        reply_seconds: float = REPLY_SECONDS,
    ) -> None:
        if image.ndim != 3 or min(image.shape) < 1:
            raise ConfigurationError(f"a viewer image is 3D (D0, D1, D2), got shape {image.shape}")
        if not np.isfinite(image).all():
            raise ConfigurationError("the image holds NaN or infinite voxels")
        self.predictor = predictor
        self.spacing = spacing
        self.reply_seconds = reply_seconds
        volume = Volume(np.asarray(image), spacing=spacing or (1.0, 1.0, 1.0))
        if geometry is not None:
            volume = replace(geometry, array=volume.array, spacing=volume.spacing)
        self.volume = volume
        self.preset = preset_for(self.volume)
        self.mask = np.zeros(image.shape, dtype=bool)
        self.axis: int | None = None
        self.keys: dict[int, SliceKey] = {}
        self.bounds: tuple[int, int] | None = None  # a 3D region's slices along the axis
        self.finished = True  # False: the last propagation was ended by the reply deadline
        self._ran: dict[int, str] = {}  # key slice -> digest of the key its chains last ran with
        self._undo: list[_Step] = []

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.volume.shape

    @property
    def nbytes(self) -> int:
        """Bytes this session holds (image, mask, undo masks)."""
        return int(self.volume.array.nbytes + self.mask.nbytes * (1 + len(self._undo)))

    # -- interactions ---------------------------------------------------------------------

    def add_point(self, coordinates: tuple[int, int, int], positive: bool) -> Change:
        """A click at voxel ``coordinates`` (one index per image axis)."""
        return self.add_prompts(points=[(coordinates, positive)])

    def add_prompts(
        self, points: Sequence[tuple[tuple[int, int, int], bool]] = (), region: list[list[int]] | None = None
    ) -> Change:
        """Prompts sent together, as one interaction: a box ``region`` ``[[low, high), ...]`` per
        image axis (one voxel thick: a box on its slice; thicker: the box of its middle slice along
        the object's axis, propagation kept within its slices), then ``points``, each
        ``(voxel coordinates, positive)`` a click on its slice."""
        updates: dict[int, SliceKey] = {}
        axis, bounds = None, self.bounds
        if region is not None:
            lows, highs = self._bbox(region)
            flat = [a for a in range(3) if highs[a] - lows[a] == 1]
            axis = self._axis_for(flat or None)
            index = (lows[axis] + highs[axis] - 1) // 2
            rows, cols = _plane_axes(axis)
            box = (float(lows[cols]), float(lows[rows]), float(highs[cols] - 1), float(highs[rows] - 1))
            updates[index] = replace(self._key(index), box=box, mask_input=None)
            bounds = bounds if flat else (lows[axis], highs[axis] - 1)
        voxels = [(self._voxel(coordinates), positive) for coordinates, positive in points]
        if not updates and not voxels:
            raise ConfigurationError("no prompt: give points or a box")
        axis = self._axis_for(None) if axis is None else axis
        rows, cols = _plane_axes(axis)
        for voxel, positive in voxels:
            key = updates.get(voxel[axis]) or self._key(voxel[axis])
            click = (float(voxel[cols]), float(voxel[rows]), positive)
            updates[voxel[axis]] = replace(key, points=(*key.points, click))
        return self._run(axis, updates, bounds)

    def add_box(self, bbox: list[list[int]], positive: bool) -> Change:
        """A 2D box ``[[low, high), ...]`` per image axis, one voxel thick along one axis."""
        lows, highs = self._bbox(bbox)
        flat = [a for a in range(3) if highs[a] - lows[a] == 1]
        if not flat:
            raise ConfigurationError(f"box {bbox} is 3D; draw it on one slice (one voxel thick along one axis)")
        if positive:
            return self.add_prompts(region=bbox)
        axis = self._axis_for(flat)
        rows, cols = _plane_axes(axis)
        region = np.zeros((self.shape[rows], self.shape[cols]), dtype=bool)
        region[lows[rows] : highs[rows], lows[cols] : highs[cols]] = True
        return self._erase(axis, lows[axis], region)

    def add_scribble(self, scribble: np.ndarray, positive: bool) -> Change:
        """A scribble (``(D0, D1, D2)``, nonzero on one slice): clicks along it."""
        axis, index, plane = self._drawn_plane(scribble, "scribble")
        key = self._key(index)
        clicks = tuple((float(x), float(y), positive) for x, y in scribble_points(plane))
        return self._run(axis, {index: replace(key, points=(*key.points, *clicks))})

    def add_lasso(self, lasso: np.ndarray, positive: bool) -> Change:
        """A lasso (``(D0, D1, D2)``, its filled region nonzero on one slice): a mask prompt and
        its box; a negative lasso erases the region."""
        axis, index, plane = self._drawn_plane(lasso, "lasso")
        if not positive:
            return self._erase(axis, index, plane)
        x0, y0, x1, y1 = (float(v) for v in tight_box(plane))
        model = self.predictor.model
        geometry = input_geometry(model.input_pipeline, plane.shape, model.input_size)
        logits = mask_answer(plane, geometry, model.low_res_size).low_res_logits
        return self._run(axis, {index: SliceKey(box=(x0, y0, x1, y1), mask_input=logits)})

    def set_initial(self, segmentation: np.ndarray) -> Change:
        """The object's mask as given (``(D0, D1, D2)``, nonzero = object); later interactions
        correct it."""
        if segmentation.shape != self.shape:
            raise ConfigurationError(f"initial segmentation of shape {segmentation.shape}; the image is {self.shape}")
        started = time.perf_counter()
        self._remember()
        new = np.asarray(segmentation) != 0
        change = self._apply(new, self.axis, 0, started)
        self.keys, self._ran, self.bounds, self.finished = {}, {}, None, True
        return change

    def finish(self) -> Change | None:
        """Run the last interaction's propagation again when the reply deadline ended it (from
        all key slices, within the deadline again); None when it had finished."""
        if self.finished or self.axis is None:
            return None
        return self._run(self.axis, {}, self.bounds)

    def reset(self) -> None:
        """Forget the object: empty mask, no key slices, no axis, no undo."""
        self.mask = np.zeros(self.shape, dtype=bool)
        self.axis, self.keys, self._ran, self._undo = None, {}, {}, []
        self.bounds, self.finished = None, True

    def undo(self) -> Change | None:
        """Put back the state before the last interaction; None when there is nothing to undo."""
        if not self._undo:
            return None
        started = time.perf_counter()
        step = self._undo.pop()
        change = self._apply(step.mask, step.axis, 0, started)
        self.keys, self.axis, self._ran = step.keys, step.axis, step.ran
        self.bounds, self.finished = step.bounds, step.finished
        return change

    # -- the engine -----------------------------------------------------------------------

    def volume_prompt(
        self, axis: int, keys: dict[int, SliceKey], bounds: tuple[int, int] | None = None
    ) -> VolumePrompt:
        """The engine's prompt for the object with ``keys`` (a correction when it has a mask and
        its last propagation finished; else afresh from every key slice). ``bounds``: slices
        propagation keeps within, widened to every key slice."""
        fresh = not self.finished or not self.mask.any()
        key_slices = tuple(
            key.key_slice(index, not fresh and self._ran.get(index) == key.digest())
            for index, key in sorted(keys.items())
        )
        if bounds is not None:
            bounds = (min(bounds[0], min(keys)), max(bounds[1], max(keys)))
        return VolumePrompt(key_slices=key_slices, bounds=bounds, current=None if fresh else self.mask)

    def _run(self, axis: int, updates: dict[int, SliceKey], bounds: tuple[int, int] | None = None) -> Change:
        started = time.perf_counter()
        keys = {**self.keys, **updates}
        prompt = self.volume_prompt(axis, keys, bounds)
        deadline = time.monotonic() + self.reply_seconds
        with VolumeSession(self.predictor, self.volume, self.preset, axis=axis) as session:
            result = segment_volume_for_model(session, [prompt], deadline=deadline)
        self._remember()
        self.keys, self.bounds, self.finished = keys, prompt.bounds, result.finished
        self._ran = {index: key.digest() for index, key in keys.items()}
        return self._apply(result.objects[0].mask, axis, result.decodings, started)

    def _erase(self, axis: int, index: int, region: np.ndarray) -> Change:
        current = np.take(self.mask, index, axis=axis)
        return self._run(axis, {index: SliceKey(mask=current & ~region)}, self.bounds)

    def _remember(self) -> None:
        self._undo.append(
            _Step(self.mask.copy(), dict(self.keys), self.axis, dict(self._ran), self.bounds, self.finished)
        )

    def _apply(self, new: np.ndarray, axis: int | None, decoded: int, started: float) -> Change:
        changed = new ^ self.mask
        self.mask, self.axis = new, axis
        bbox = _bbox_of(changed)
        slices = [] if axis is None else [int(i) for i in np.flatnonzero(changed.any(axis=_plane_axes(axis)))]
        milliseconds = (time.perf_counter() - started) * 1000
        return Change(bbox, slices, axis, decoded, milliseconds, self.finished)

    # -- coordinates ----------------------------------------------------------------------

    def _axis_for(self, drawn: list[int] | None) -> int:
        """The object's axis; a new object's: the drawn axis, else the largest spacing's."""
        if self.axis is not None:
            if drawn is not None and self.axis not in drawn:
                raise ConfigurationError(
                    f"this object is segmented on slices along axis {self.axis}; draw on that axis "
                    "(or reset the interactions to start along another)"
                )
            return self.axis
        if drawn is not None:
            return drawn[0]
        if 1 in self.shape:  # a 2D image
            return self.shape.index(1)
        if self.spacing is None:
            return 0
        return int(np.argmax(self.spacing))

    def _key(self, index: int) -> SliceKey:
        """The slice's prompt so far, to add to; a slice given as a mask (after a negative box or
        lasso) starts its prompt over."""
        key = self.keys.get(index, SliceKey())
        return key if key.mask is None else SliceKey()

    def _voxel(self, coordinates: tuple[int, int, int]) -> tuple[int, int, int]:
        if len(coordinates) != 3:
            raise ConfigurationError(f"a point has 3 coordinates, got {list(coordinates)}")
        voxel = tuple(int(c) for c in coordinates)
        if any(not 0 <= c < s for c, s in zip(voxel, self.shape)):
            raise ConfigurationError(f"point {list(voxel)} is outside the image {list(self.shape)}")
        return voxel  # type: ignore[return-value]

    def _bbox(self, bbox: list[list[int]]) -> tuple[list[int], list[int]]:
        if len(bbox) != 3 or any(len(pair) != 2 for pair in bbox):
            raise ConfigurationError(f"a box is [[low, high), ...] per image axis (3 pairs), got {bbox}")
        lows = [max(0, int(low)) for low, _ in bbox]
        highs = [min(size, int(high)) for (_, high), size in zip(bbox, self.shape)]
        if any(high <= low for low, high in zip(lows, highs)):
            raise ConfigurationError(f"box {bbox} is empty inside the image {list(self.shape)}")
        return lows, highs

    def _drawn_plane(self, drawing: np.ndarray, what: str) -> tuple[int, int, np.ndarray]:
        if drawing.shape != self.shape:
            raise ConfigurationError(f"{what} of shape {drawing.shape}; the image is {self.shape}")
        drawn = drawing != 0
        bbox = _bbox_of(drawn)
        if bbox is None:
            raise ConfigurationError(f"the {what} is empty")
        flat = [a for a, (low, high) in enumerate(bbox) if high - low == 1]
        if not flat:
            raise ConfigurationError(f"the {what} spans several slices along every axis; draw it on one slice")
        axis = self._axis_for(flat)
        index = bbox[axis][0]
        return axis, index, np.take(drawn, index, axis=axis)


def scribble_points(plane: np.ndarray) -> list[tuple[int, int]]:
    """``(x, y)`` clicks along a drawn ``(H, W)`` bool scribble: its skeleton's pixels in raster
    order, each kept when it is at least :data:`SCRIBBLE_SPACING` pixels from every kept one, at
    most :data:`SCRIBBLE_POINTS`."""
    from skimage.morphology import skeletonize

    rows, cols = np.nonzero(skeletonize(plane) if plane.sum() > 2 else plane)
    kept: list[tuple[int, int]] = []
    for y, x in zip(rows.tolist(), cols.tolist()):
        if all((x - kx) ** 2 + (y - ky) ** 2 >= SCRIBBLE_SPACING**2 for kx, ky in kept):
            kept.append((x, y))
            if len(kept) == SCRIBBLE_POINTS:
                break
    return kept


def _plane_axes(axis: int) -> tuple[int, int]:
    """The image axes of a plane along ``axis``: its rows (y, the earlier one) and columns (x)."""
    rows, cols = (a for a in range(3) if a != axis)
    return rows, cols


def _bbox_of(mask: np.ndarray) -> list[list[int]] | None:
    """``[[low, high), ...]`` per axis around the True voxels of ``mask``; None when there are none."""
    if not mask.any():
        return None
    box = box3d_of_mask(mask)
    return [[box.z0, box.z1 + 1], [box.y0, box.y1 + 1], [box.x0, box.x1 + 1]]
