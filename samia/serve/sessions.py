"""The viewer sessions of one ``samia serve``: who holds which, for how long, in how much memory.

A client *claims* a session and gets a random lease token; every request names it. A session is
the client's alone (its own image and object, its own predictor; only the model and the embedding
cache are shared, and neither is mutable state of a session). Two clocks end a session, as
nnInteractive's server has them: the *liveness* lease (:class:`samia.leases.Leases`), renewed by
every request including the client's background heartbeat, ends a crashed client's session; the
*idle* timeout, renewed only by real actions (an image, an interaction), ends a session left open
and untouched. Memory is bounded: at most ``max_sessions`` sessions, their images within
``memory_bytes`` (an image that would pass it is refused after expired sessions are swept), the
embeddings within the shared cache's byte budget (least recently used evicted).

When a client sends an image, the slices along the axis it will most likely draw on (the largest
spacing's, else the first) are encoded in the background, from the middle outward, as many as the
cache holds; an interaction that comes first encodes the slices it needs itself.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samia.annotate.prefetch import PlaneJob, Prefetcher
from samia.embeddings import EmbeddingCache
from samia.errors import SamiaError
from samia.leases import LeaseError, Leases
from samia.models.interface import Segmenter
from samia.predictor import SamiaPredictor
from samia.serve import REPLY_SECONDS
from samia.serve.viewer import Change, ViewerSession
from samia.transforms import gray_to_rgb, volume_to_uint8
from samia.types import Volume

_log = logging.getLogger("samia.serve")


class AtCapacityError(SamiaError):
    """Every session is taken (``--max-sessions``)."""


class SessionGoneError(SamiaError):
    """The lease token is unknown, released or expired."""


class MemoryBudgetError(SamiaError):
    """An image would take the sessions' images past the memory budget."""


class NoImageError(SamiaError):
    """The session has no image (or no target buffer) yet."""


@dataclass
class SessionEntry:
    """One claimed session.

    Attributes:
        token: the lease token (also the session's name in logs, shortened).
        viewer: the image and object, once an image arrived.
        target: ``(shape, dtype name)`` of the client's target buffer, once set.
        active: clock seconds of the last real action (the idle timeout's start).
    """

    token: str
    active: float
    heartbeat: bool = True
    """False: a client that never sends heartbeats (MONAI Label's): only the idle timeout ends it."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    viewer: ViewerSession | None = None
    target: tuple[tuple[int, ...], str] | None = None
    prefetcher: Prefetcher | None = None
    ahead: tuple[int, list[PlaneJob]] = (0, [])
    """The axis encoded ahead and its slices' jobs, nearest the middle first."""
    sent: Any = None
    """What a client that sends every prompt with each request sent last (its protocol's own record)."""

    @property
    def name(self) -> str:
        return self.token[:8]

    def require_viewer(self) -> ViewerSession:
        if self.viewer is None:
            raise NoImageError("no image in this session: send one first (set_image)")
        return self.viewer


class ViewerSessions:
    """Every session of one server.

    Args:
        model: the segmenter every session runs (shared; its runtimes are thread-safe).
        max_sessions: most sessions at once.
        idle_seconds: a session with no real action for this long is ended.
        liveness_seconds: a session with no request at all for this long is ended.
        memory_bytes: most bytes of images (and masks) held by all sessions together.
        cache_bytes: most bytes of embeddings kept in memory, shared by the sessions.
        reply_seconds: propagation time after which an interaction answers what it has.
        clock: monotonic seconds (tests move it).
    """

    def __init__(
        self,
        model: Segmenter,
        max_sessions: int = 4,
        idle_seconds: float = 600.0,
        liveness_seconds: float = 60.0,
        memory_bytes: int = 4 * 2**30,
        cache_bytes: int = 1024 * 2**20,
        reply_seconds: float = REPLY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.model, self.max_sessions = model, max_sessions
        self.idle_seconds, self.liveness_seconds = idle_seconds, liveness_seconds
        self.memory_bytes, self.reply_seconds, self.clock = memory_bytes, reply_seconds, clock
        per_embedding = int(np.prod(model.embedding_shape)) * 4
        self.cache = EmbeddingCache(max_items=max(1, cache_bytes // per_embedding), max_bytes=cache_bytes)
        self._leases: Leases[str] = Leases(liveness_seconds, describe=lambda token: f"session {token[:8]}", clock=clock)
        self._entries: dict[str, SessionEntry] = {}
        self._lock = threading.Lock()

    def claim(self, heartbeat: bool = True) -> SessionEntry:
        """A new session (``heartbeat`` False: its client sends none, so it has no liveness lease).

        Raises:
            AtCapacityError: ``max_sessions`` are live.
        """
        self.sweep()
        with self._lock:
            if len(self._entries) >= self.max_sessions:
                raise AtCapacityError(f"the server is at capacity ({self.max_sessions} sessions); retry later")
            token = secrets.token_urlsafe(24)
            entry = SessionEntry(token, active=self.clock(), heartbeat=heartbeat)
            self._entries[token] = entry
        if heartbeat:
            self._leases.claim(token, token)
        return entry

    def get(self, token: str | None, active: bool = False) -> SessionEntry:
        """The session of ``token``, its lease renewed (``active``: a real action, which also
        renews the idle timeout).

        Raises:
            SessionGoneError: no such live session.
        """
        entry = self.peek(token)
        try:
            if entry.heartbeat:
                self._leases.renew(entry.token, entry.token)
        except LeaseError:
            self._end(entry.token)
            raise SessionGoneError("lease expired or unknown") from None
        if active:
            entry.active = self.clock()
        return entry

    def peek(self, token: str | None) -> SessionEntry:
        """The session of ``token`` without renewing anything.

        Raises:
            SessionGoneError: no such session, or its lease or idle time is over.
        """
        self.sweep()
        with self._lock:
            entry = self._entries.get(token or "")
        if entry is None:
            raise SessionGoneError("lease token missing" if not token else "lease expired or unknown")
        return entry

    def remaining_seconds(self, entry: SessionEntry) -> float:
        """Seconds until the idle timeout ends ``entry``."""
        return max(0.0, entry.active + self.idle_seconds - self.clock())

    def release(self, token: str | None) -> bool:
        """End the session of ``token``; True when there was one."""
        return token is not None and self._end(token)

    def sweep(self) -> list[str]:
        """End the sessions whose lease or idle time is over; their names."""
        ended = [token for token in self._leases.expired() if self._end(token)]
        with self._lock:
            idle = [t for t, e in self._entries.items() if self.remaining_seconds(e) <= 0]
        ended += [token for token in idle if self._end(token)]
        return [token[:8] for token in ended]

    def close(self) -> None:
        with self._lock:
            tokens = list(self._entries)
        for token in tokens:
            self._end(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def set_image(
        self,
        entry: SessionEntry,
        image: np.ndarray,
        spacing: tuple[float, float, float] | None,
        geometry: Volume | None = None,
    ) -> None:
        """Give ``entry`` a new image (its object starts over) and start encoding it; ``geometry``:
        the image file's, when the client sent a file (see :class:`ViewerSession`).

        Raises:
            MemoryBudgetError: the image does not fit in what the other sessions leave.
        """
        self.sweep()
        with self._lock:
            others = sum(e.viewer.nbytes for e in self._entries.values() if e is not entry and e.viewer is not None)
        needed = image.nbytes + image.size  # the image and its mask
        if others + needed > self.memory_bytes:
            raise MemoryBudgetError(
                f"an image of {needed / 2**20:.0f} MiB does not fit: the sessions hold {others / 2**20:.0f} of "
                f"{self.memory_bytes / 2**20:.0f} MiB (--memory-mb)"
            )
        if entry.prefetcher is not None:
            entry.prefetcher.close()
        predictor = SamiaPredictor(self.model, self.cache)
        entry.viewer = ViewerSession(predictor, image, spacing, geometry, self.reply_seconds)
        entry.prefetcher = Prefetcher(self.model, self.cache)
        entry.ahead = self._likely_slices(entry.token, entry.viewer)
        entry.prefetcher.want(entry.ahead[1])

    def interact(
        self, entry: SessionEntry, kind: str, action: Callable[[ViewerSession], Change | None]
    ) -> Change | None:
        """Run ``action`` (an interaction of ``kind``) on ``entry``'s viewer and log it in one line
        (kind, session, axis, slices changed, decoder calls, milliseconds). Its background
        encoding is paused meanwhile (the action encodes what it needs itself; a slice being
        encoded is waited for, not encoded twice), then resumed where the object is segmented on
        the axis encoded ahead (slices already encoded cost a lookup)."""
        viewer = entry.require_viewer()
        if entry.prefetcher is not None:
            entry.prefetcher.drop(lambda job: False)
            entry.prefetcher.idle()
        try:
            change = action(viewer)
        finally:
            axis, jobs = entry.ahead
            if entry.prefetcher is not None and viewer.axis in (None, axis):
                entry.prefetcher.want(jobs)
        if change is not None:
            _log.info(
                "%s session=%s axis=%s slices=%s decoded=%d ms=%.0f%s",
                kind,
                entry.name,
                change.axis,
                _ranges(change.slices),
                change.decoded,
                change.milliseconds,
                "" if change.finished else " unfinished (reply deadline)",
            )
        return change

    def _likely_slices(self, token: str, viewer: ViewerSession) -> tuple[int, list[PlaneJob]]:
        axis = 0 if viewer.spacing is None else int(np.argmax(viewer.spacing))
        depth = viewer.shape[axis]
        middle = depth // 2
        order = sorted(range(depth), key=lambda index: (abs(index - middle), index))[: self.cache.max_items]
        gray = volume_to_uint8(viewer.volume, viewer.preset)
        return axis, [((token, axis, index), _plane(gray, axis, index)) for index in order]

    def _end(self, token: str) -> bool:
        with self._lock:
            entry = self._entries.pop(token, None)
        self._leases.release(token, token)
        if entry is None:
            return False
        if entry.prefetcher is not None:
            entry.prefetcher.close()
        entry.viewer = None
        return True


def _ranges(slices: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5,9`` (a log line stays short)."""
    parts, start = [], None
    for index, value in enumerate(slices):
        if start is None:
            start = value
        if index + 1 == len(slices) or slices[index + 1] != value + 1:
            parts.append(f"{start}-{value}" if value != start else f"{value}")
            start = None
    return ",".join(parts) or "-"


def _plane(gray: np.ndarray, axis: int, index: int) -> Callable[[], np.ndarray]:
    return lambda: gray_to_rgb(np.take(gray, index, axis=axis))
