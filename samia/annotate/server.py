"""The annotation server's state, without web code: the cases of one data folder, their sessions,
who holds each case, and the background encoder.

One :class:`AnnotationServer` serves one data folder into one annotation folder, and holds that
folder's lock (:class:`~samia.files.FolderLock`) while it runs: a second server on the same folder
is refused. A case is worked on by one client (a browser page, named by a random id it makes) at a
time, under a lease (:mod:`samia.leases`): opening claims it, every request and the page's
heartbeat renew it, closing the page releases it, and a page that stops sending heartbeats loses it
after ``SAMIA_LEASE_SECONDS``. Another client opening a case whose lease expired takes it at once;
one whose lease is live is told and may take it over (``force``), after which the first client is
told its case was taken over. Every call on a case runs under that case's lock, so two requests on
one case are serialised while different cases run at once.

Memory stays bounded however many clients come and go: a case's session (its image, label map and
drafts) lives only while a lease holds it (everything needed to resume is on disk), and the
embeddings are kept within ``SAMIA_ANNOTATE_CACHE_MB``. :mod:`samia.annotate.app` puts this behind
HTTP.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from samia.annotate.cases import AnnotationCase, find_cases
from samia.annotate.drafts import Edit
from samia.annotate.log import append_event, write_study_file
from samia.annotate.prefetch import PlaneJob, Prefetcher
from samia.annotate.session import STATE_NAME, AnnotationSession, opening_view, plane_rgb, read_state
from samia.embeddings import EmbeddingCache
from samia.errors import ConfigurationError, LabelFileChangedError, SamiaError
from samia.files import FolderLock
from samia.leases import Leases
from samia.models.interface import Segmenter
from samia.predictor import SamiaPredictor
from samia.settings import ANNOTATE_CACHE_MB, LEASE_SECONDS
from samia.transforms import PRESETS, get_preset, volume_to_uint8
from samia.types import Volume

PREFETCH_SLICES = 2
"""Slices on each side of the current one encoded ahead of the user."""

PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
)  # fmt: skip
"""Object colours by label value (``PALETTE[(value - 1) % len(PALETTE)]``), unless ``dataset.json``
gives ``"colors": {"1": "#rrggbb"}``."""


class CaseNotOpenError(Exception):
    """The case has no session open (open it first)."""


class UnknownCaseError(Exception):
    """No case has this id."""


@dataclass
class CaseRoom:
    """One case and who works on it."""

    case: AnnotationCase
    lock: threading.Lock = field(default_factory=threading.Lock)
    session: AnnotationSession | None = None
    error: str | None = None


def object_color(label: int, colors: dict[int, tuple[int, int, int]]) -> tuple[int, int, int]:
    """The display colour of label value ``label`` (RGB, 0..255)."""
    return colors.get(label, PALETTE[(label - 1) % len(PALETTE)])


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 array."""
    import cv2

    order = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(array), order), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def overlay_rgba(
    labels: np.ndarray, draft: np.ndarray, label: int, colors: dict[int, tuple[int, int, int]]
) -> np.ndarray:
    """``(H, W, 4)`` uint8: accepted objects (``labels``, ``(H, W)``) half transparent, the draft of
    object ``label`` (``(H, W)`` bool) stronger on top."""
    overlay = np.zeros((*labels.shape, 4), dtype=np.uint8)
    for value in np.unique(labels):
        if value:
            overlay[labels == value] = (*object_color(int(value), colors), 110)
    if label:
        overlay[draft] = (*object_color(label, colors), 170)
    return overlay


def _colors(data: Path) -> dict[int, tuple[int, int, int]]:
    from samia.data.layouts import read_dataset_json

    try:
        content = read_dataset_json(data) if data.is_dir() else None
    except SamiaError:
        return {}
    raw = (content or {}).get("colors") or (content or {}).get("colours") or {}
    colors = {}
    for key, value in raw.items() if isinstance(raw, dict) else ():
        text = str(value).lstrip("#")
        if str(key).isdigit() and len(text) == 6:
            try:
                colors[int(key)] = tuple(int(text[i : i + 2], 16) for i in (0, 2, 4))
            except ValueError:
                continue
    return colors  # type: ignore[return-value]


def _plane_job(case_id: str, index: int, session: AnnotationSession) -> tuple[str, int, str]:
    """The background encoder's id of a plane of an open case under its current window."""
    return case_id, index, session.preset.name


class AnnotationServer:
    """The cases of ``data`` annotated into ``out``.

    Args:
        data: a dataset folder, a folder of images, or one image.
        out: the annotation folder (created).
        model: the segmenter (any backend); None: manual annotation (brush, polygon, eraser).
        model_name: how the study file names the model.
        rater: whose masks ``out`` holds (a plain name; None: not named); one folder per rater.
        clock: seconds since the epoch of logged events.
        lease_clock: monotonic seconds the leases run on (tests move it).

    Raises:
        DatasetLayoutError: ``data`` holds no image.
        ConfigurationError: another process serves ``out``; ``out`` holds another rater's annotations.
    """

    def __init__(
        self,
        data: Path,
        out: Path,
        model: Segmenter | None = None,
        model_name: str | None = None,
        rater: str | None = None,
        clock: Callable[[], float] = time.time,
        lease_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.data, self.out, self.model, self.clock = Path(data).resolve(), Path(out).resolve(), model, clock
        self.rater = rater
        cases, problems = find_cases(self.data)
        self._folder_lock = FolderLock(self.out).__enter__()
        try:
            write_study_file(self.out, self.data, model_name, self.mode, rater)
        except ConfigurationError:
            self._folder_lock.__exit__()
            raise
        self.rooms = {case.id: CaseRoom(case) for case in cases}
        self.leases: Leases[str] = Leases(
            LEASE_SECONDS.value(), describe=lambda case: f"case {self.rooms[case].case.name}", clock=lease_clock
        )
        self.problems = [str(problem) for problem in problems]
        self.colors = _colors(self.data)
        budget = int(ANNOTATE_CACHE_MB.value() * 2**20)
        self.cache = EmbeddingCache(max_items=budget // 2**20, max_bytes=budget)
        self.prefetcher = Prefetcher(model, self.cache) if model is not None else None
        for problem in self.problems:
            self._log_problem(None, problem)

    @property
    def mode(self) -> str:
        """``assisted`` or ``manual``."""
        return "manual" if self.model is None else "assisted"

    def close(self) -> None:
        """Stop the encoder and free the annotation folder for another server."""
        if self.prefetcher is not None:
            self.prefetcher.close()
        self._folder_lock.__exit__()

    # -- cases --------------------------------------------------------------------------------

    def room(self, case_id: str) -> CaseRoom:
        room = self.rooms.get(case_id)
        if room is None:
            raise UnknownCaseError(f"no case {case_id!r}")
        return room

    def case_list(self, client: str | None = None) -> list[dict[str, Any]]:
        """Every case: id, name, status (``new``, ``in progress``, ``error``), objects accepted, and
        whether a client other than ``client`` holds it."""
        self._drop_expired()
        listing = []
        for room in self.rooms.values():
            folder = self.out / room.case.name
            if room.session is not None:
                accepted = len(room.session.accepted)
            else:
                try:
                    saved = read_state(folder)
                except ConfigurationError:  # opening the case reports it
                    saved = None
                accepted = len(saved.accepted) if saved is not None else 0
            status = "error" if room.error else ("in progress" if (folder / STATE_NAME).is_file() else "new")
            listing.append(
                {
                    "id": room.case.id,
                    "name": room.case.name,
                    "status": status,
                    "error": room.error,
                    "objects": accepted,
                    "ground_truth": room.case.ground_truth is not None,
                    "open_elsewhere": self.leases.holder(room.case.id) not in (None, client),
                }
            )
        return listing

    def open(self, case_id: str, client: str, force: bool = False) -> dict[str, Any]:
        """Claim a case for ``client`` and open its session; the client's other cases are released.

        Raises:
            UnknownCaseError, HeldElsewhereError (another client's lease is live and not ``force``),
            SamiaError (the image cannot be read: the error is kept and logged, other cases work).
        """
        room = self.room(case_id)
        self._drop_expired()
        self.leases.claim(case_id, client, take_over=force)
        for other in self.rooms.values():
            if other is not room:
                self.release(other.case.id, client)
        try:
            with room.lock:
                self._ensure_session(room)
                state = self.state(room)
                state["lease_seconds"] = self.leases.seconds
        except SamiaError:
            self.leases.release(case_id, client)
            raise
        self._prefetch(room)
        return state

    def release(self, case_id: str, client: str) -> None:
        """``client`` is done with the case: its lease ends and its session is closed (everything
        needed to resume is on disk)."""
        room = self.room(case_id)
        if self.leases.release(case_id, client):
            self._close_session(room)

    def heartbeat(self, case_id: str, client: str) -> dict[str, Any]:
        """Renew ``client``'s lease on the case (the page calls this while it is shown).

        Raises:
            LeaseLostError: another client took the case over, or its lease expired and was freed.
        """
        self._drop_expired()
        lease = self.leases.renew(case_id, client)
        return {"case": case_id, "lease_seconds": round(lease.expires - lease.renewed, 3)}

    def act(
        self, case_id: str, client: str, action: Callable[[AnnotationSession], Any], prefetch: bool = False
    ) -> dict[str, Any]:
        """Run ``action`` on the case's session under its lock, for the client that holds its lease
        (renewed); returns the new state (with ``latency_ms``: the action's server time).
        ``prefetch``: the action moved the view, so the planes around it are asked of the encoder.

        Raises:
            LeaseLostError: ``client`` does not hold the case (taken over, expired, never opened).
            LabelFileChangedError: the case's label file was changed on disk; the session is closed,
                so opening the case again starts from that file.
        """
        room = self.room(case_id)
        self.leases.renew(case_id, client)
        with room.lock:
            session = self._ensure_session(room)
            started = time.perf_counter()
            try:
                result = action(session)
            except LabelFileChangedError:
                room.session = None
                raise
            latency = (time.perf_counter() - started) * 1000
            state = self.state(room)
        if prefetch:
            self._prefetch(room)
        state["latency_ms"] = round(latency, 2)
        if isinstance(result, list):
            state["written_slices"] = result
        return state

    # -- interactions (each runs under the case's lock via act) -------------------------------

    def edit(self, case_id: str, client: str, edit: Edit, name: str | None = None) -> dict[str, Any]:
        """Apply ``edit`` (starting an object named ``name`` when none is started) and return the state."""

        def run(session: AnnotationSession) -> None:
            if self.prefetcher is not None:
                self.prefetcher.settle(_plane_job(case_id, session.slice_index, session))
            session.edit(edit, name)

        return self.act(case_id, client, run)

    def go_to(self, case_id: str, client: str, index: int, discard: bool = False) -> dict[str, Any]:
        return self.act(case_id, client, lambda session: session.go_to(index, discard), prefetch=True)

    def set_preset(self, case_id: str, client: str, name: str, discard: bool = False) -> dict[str, Any]:
        preset = get_preset(name)
        return self.act(case_id, client, lambda session: session.set_preset(preset, discard), prefetch=True)

    def plane_png(self, case_id: str, index: int | None = None) -> bytes:
        room = self.room(case_id)
        with room.lock:
            if room.session is None:
                raise CaseNotOpenError(f"case {room.case.name} is not open; open it first")
            return encode_png(room.session.plane_rgb(index))

    def state(self, room: CaseRoom) -> dict[str, Any]:
        """What the page shows of an open case (the caller holds the case's lock)."""
        session = room.session
        assert session is not None
        draft = session.draft
        objects = []
        for label in sorted(set(session.names) | set(session.accepted)):
            objects.append(
                {
                    "label": label,
                    "name": session.names.get(label, f"object {label}"),
                    "color": "#{:02x}{:02x}{:02x}".format(*object_color(label, self.colors)),
                    "slices": session.accepted.get(label, []),
                    "propagated": session.propagated.get(label, []),
                }
            )
        overlay = overlay_rgba(session.plane_labels(), draft.mask, session.label, self.colors)
        return {
            "case": room.case.id,
            "name": room.case.name,
            "volume": session.is_volume,
            "depth": session.depth,
            "slice": session.slice_index,
            "shape": list(session.plane_shape),
            "label": session.label,
            "objects": objects,
            "can_undo": session.can_undo,
            "can_redo": session.can_redo,
            "mode": session.mode,
            "preset": session.preset.name,
            "presets": [name for name in PRESETS if name != "huang2024" or not session.is_volume],
            "draft": {
                "edits": len(draft.edits),
                "pixels": int(draft.mask.sum()),
                "predicted_iou": None if np.isnan(draft.predicted_iou) else round(draft.predicted_iou, 4),
            },
            "overlay": "data:image/png;base64," + base64.b64encode(encode_png(overlay)).decode(),
        }

    # -- internals ----------------------------------------------------------------------------

    def _log_problem(self, case: str | None, problem: str) -> None:
        append_event(self.out, when=self.clock(), case=case, kind="error", details={"problem": problem})

    def _ensure_session(self, room: CaseRoom) -> AnnotationSession:
        """The case's session, opened (resumed from disk) if it is not (the caller holds its lock).

        Raises:
            SamiaError: the image or its saved annotation cannot be read (kept as the case's error).
        """
        if room.session is None:
            try:
                room.session = self._session(room.case)
            except SamiaError as error:
                room.error = str(error)
                self._log_problem(room.case.name, room.error)
                raise
            room.error = None
        return room.session

    def _close_session(self, room: CaseRoom) -> None:
        with room.lock:
            if room.session is None:
                return
            room.session = None
        if self.prefetcher is not None:
            self.prefetcher.drop(lambda job: job[0] != room.case.id)
        _return_free_memory()

    def _drop_expired(self) -> None:
        """Close the sessions of cases whose lease expired."""
        for case_id in self.leases.expired():
            self._close_session(self.rooms[case_id])

    def _session(self, case: AnnotationCase) -> AnnotationSession:
        from samia.io import read_image

        image = read_image(case.image_path, modality=case.modality)
        predictor = SamiaPredictor(self.model, self.cache) if self.model is not None else None
        return AnnotationSession(
            image,
            self.out,
            case.name,
            predictor,
            names=case.label_names,
            source=case.image_path,
            clock=self.clock,
        )

    def _prefetch(self, room: CaseRoom) -> None:
        """Ask the encoder for the current slice, its neighbours and the next case's first plane."""
        if self.prefetcher is None or room.session is None:
            return
        session = room.session
        index = session.slice_index
        offsets = [0] + [step * sign for step in range(1, PREFETCH_SLICES + 1) for sign in (1, -1)]
        jobs: list[PlaneJob] = [
            (_plane_job(room.case.id, index + offset, session), partial(session.plane_rgb, index + offset))
            for offset in offsets
            if 0 <= index + offset < session.depth
        ]
        ids = list(self.rooms)
        following = ids.index(room.case.id) + 1
        if following < len(ids) and self.rooms[ids[following]].session is None:
            jobs.append(((ids[following], "first"), partial(self._first_plane, self.rooms[ids[following]].case)))
        self.prefetcher.want(jobs)

    def _first_plane(self, case: AnnotationCase) -> np.ndarray:
        """The plane a case's session will open on (:func:`~samia.annotate.session.opening_view`)."""
        from samia.io import read_image

        image = read_image(case.image_path, modality=case.modality)
        index, preset = opening_view(image, self.out / case.name)
        gray = volume_to_uint8(image, preset) if isinstance(image, Volume) else None
        return plane_rgb(gray, image, preset, index)


def _return_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the system (glibc's ``malloc_trim``), so a
    server's resident memory falls when sessions close instead of staying at its peak."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
        if trim is not None:
            trim(0)
