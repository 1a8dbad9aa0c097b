"""Encode image planes ahead of the annotator, on one background thread.

The server asks for the planes the user is likely to click next (the current slice, its
neighbours, the next case); the encoder thread computes their embeddings into the cache that every
session's predictor reads, so a click on a prefetched plane goes straight to the decoder. A newer
request replaces the pending jobs (the user has moved on); a job already being encoded finishes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from samia.embeddings import EmbeddingCache
from samia.models.interface import Segmenter
from samia.predictor import SamiaPredictor

_log = logging.getLogger(__name__)

PlaneJob = tuple[tuple[Hashable, ...], Callable[[], np.ndarray]]
"""``(job id, producer)``: the producer returns the plane as the model sees it, ``(H, W, 3)`` uint8."""


class Prefetcher:
    """One daemon thread that encodes planes into ``cache`` for ``model``.

    Args:
        model: the segmenter the sessions use.
        cache: the embedding cache the sessions' predictors share (it must hold at least as many
            embeddings as are asked for at once).
    """

    def __init__(self, model: Segmenter, cache: EmbeddingCache) -> None:
        self._predictor = SamiaPredictor(model, cache)
        self._pending: list[PlaneJob] = []
        self._running: tuple[Hashable, ...] | None = None
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="samia-prefetch", daemon=True)
        self._thread.start()

    @property
    def encoded(self) -> int:
        """Embeddings this thread computed (cache hits not counted)."""
        return self._predictor.encoder_calls

    def want(self, jobs: Sequence[PlaneJob]) -> None:
        """Encode these planes next, in order, instead of whatever was still pending (planes
        already in the cache are found there, not encoded again)."""
        with self._condition:
            self._pending = [job for job in jobs if job[0] != self._running]
            self._condition.notify_all()

    def drop(self, keep: Callable[[tuple[Hashable, ...]], bool]) -> None:
        """Forget the pending jobs whose id ``keep`` rejects (a closed case's planes: their
        producers hold its session); a job already being encoded finishes."""
        with self._condition:
            self._pending = [job for job in self._pending if keep(job[0])]

    def settle(self, job_id: tuple[Hashable, ...]) -> None:
        """Before the caller encodes ``job_id`` itself: drop it if pending, wait if being encoded."""
        with self._condition:
            self._pending = [job for job in self._pending if job[0] != job_id]
            while self._running == job_id:
                self._condition.wait()

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or running; False if ``timeout`` seconds passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and self._running is None, timeout)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._pending = []
            self._condition.notify_all()
        self._thread.join()

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                job_id, produce = self._pending.pop(0)
                self._running = job_id
            try:  # a plane already in the cache costs a hash of its pixels
                self._predictor.set_image(produce())
            except Exception as error:  # the session encodes it itself and reports the problem
                _log.warning("prefetching %s failed: %s", job_id, error)
            with self._condition:
                self._running = None
                self._condition.notify_all()
