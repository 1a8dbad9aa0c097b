"""The nnInteractive Slicer server's API (``nninteractive-slicer-server``), which SlicerNNInteractive
before its remote-client rework calls.

It lives under ``/slicer`` (its paths overlap the v2 protocol's). That API has no sessions: one image per server. samia gives it one session of its own (claimed on
the first image, renewed by every request of this API, within the same capacity, memory budget and
idle timeout as every other session; its plugin sends no heartbeat, so a user who thinks for more
than the liveness lease between two clicks keeps the session). Images arrive as ``.npy`` files in a multipart form
(``/upload_image``), masks as gzipped ``.npy`` files (``/upload_segment``, lassos and scribbles with
a ``positive_click`` form field); points and boxes as JSON in ``(k, j, i)`` voxel order. Every
interaction answers the whole mask as packed bits (``numpy.packbits``), gzipped, with
``Content-Encoding: gzip``. A request before an image answers ``{"status": "error", "message": "No
image uploaded"}``, which the plugin takes as its cue to upload the image again.
"""

from __future__ import annotations

import gzip
import logging
import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from samia.serve.npy import read_npy
from samia.serve.sessions import SessionEntry, SessionGoneError, ViewerSessions
from samia.serve.viewer import Change, ViewerSession
from samia.settings import MAX_PIXELS

_log = logging.getLogger("samia.serve")

NO_IMAGE = {"status": "error", "message": "No image uploaded"}
PREFIX = "/slicer"
"""Where the API lives (the plugin's Server URL is ``http://HOST:PORT/slicer``): its paths overlap
nnInteractive's v2 protocol's."""


class PointParams(BaseModel):
    voxel_coord: list[int]
    positive_click: bool


class BoxParams(BaseModel):
    outer_point_one: list[int]
    outer_point_two: list[int]
    positive_click: bool


class _Holder:
    """The one session this API works in (made again when it ended)."""

    def __init__(self, sessions: ViewerSessions) -> None:
        self.sessions = sessions
        self.token: str | None = None
        self.lock = threading.Lock()

    def entry(self, new: bool = False) -> SessionEntry | None:
        """The session, renewed; a new one when ``new``; None when it has none (or it ended)."""
        with self.lock:
            if self.token is not None:
                try:
                    return self.sessions.get(self.token, active=True)
                except SessionGoneError:
                    self.token = None
            if not new:
                return None
            entry = self.sessions.claim(heartbeat=False)  # the plugin sends none: only idle time ends it
            self.token = entry.token
            return entry


def add_routes(app: FastAPI, sessions: ViewerSessions) -> None:
    """Mount the Slicer server's paths on ``app``."""
    holder = _Holder(sessions)
    router = APIRouter(prefix=PREFIX)
    limit = int(MAX_PIXELS.value())

    @router.post("/upload_image")
    async def upload_image(file: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008 (FastAPI's form style)
        body = await file.read()

        def work() -> dict[str, Any]:
            image = read_npy(body, limit, gzipped=False)
            if image.ndim != 3:
                raise ValueError(f"the image is 3D, got shape {image.shape}")
            entry = holder.entry(new=True)
            assert entry is not None
            with entry.lock:
                sessions.set_image(entry, image, None)
                entry.target = (image.shape, "uint8")
            _log.info("upload_image session=%s shape=%s", entry.name, list(image.shape))
            return {"status": "ok"}

        return await run_in_threadpool(work)

    @router.post("/upload_segment", response_model=None)
    async def upload_segment(file: UploadFile = File(...)) -> dict[str, Any] | Response:  # noqa: B008
        body = await file.read()

        def work(viewer: ViewerSession) -> Change | None:
            mask = read_npy(body, limit, gzipped=True)
            if not mask.any():
                viewer.reset()
                return None
            return viewer.set_initial(mask)

        return await _interact(holder, sessions, "initial_seg", work, answer=False)

    @router.post("/add_point_interaction", response_model=None)
    async def add_point(params: PointParams) -> dict[str, Any] | Response:
        coordinates = tuple(params.voxel_coord)
        return await _interact(
            holder, sessions, "point", lambda viewer: viewer.add_point(coordinates, params.positive_click)
        )

    @router.post("/add_bbox_interaction", response_model=None)
    async def add_bbox(params: BoxParams) -> dict[str, Any] | Response:
        corners = np.array([params.outer_point_one, params.outer_point_two])
        box = [[int(low), int(high) + 1] for low, high in zip(corners.min(axis=0), corners.max(axis=0))]
        return await _interact(holder, sessions, "bbox", lambda viewer: viewer.add_box(box, params.positive_click))

    @router.post("/add_lasso_interaction", response_model=None)
    async def add_lasso(file: UploadFile = File(...), positive_click: str = Form(...)) -> dict[str, Any] | Response:  # noqa: B008
        body, positive = await file.read(), _true(positive_click)
        return await _interact(
            holder, sessions, "lasso", lambda viewer: viewer.add_lasso(read_npy(body, limit, True), positive)
        )

    @router.post("/add_scribble_interaction", response_model=None)
    async def add_scribble(file: UploadFile = File(...), positive_click: str = Form(...)) -> dict[str, Any] | Response:  # noqa: B008
        body, positive = await file.read(), _true(positive_click)
        return await _interact(
            holder, sessions, "scribble", lambda viewer: viewer.add_scribble(read_npy(body, limit, True), positive)
        )

    app.include_router(router)


async def _interact(
    holder: _Holder, sessions: ViewerSessions, kind: str, action: Any, answer: bool = True
) -> dict[str, Any] | Response:
    """Run ``action`` on the session's viewer; the whole mask as gzipped packed bits."""

    def work() -> dict[str, Any] | Response:
        entry = holder.entry()
        if entry is None or entry.viewer is None:
            return NO_IMAGE
        with entry.lock:
            sessions.interact(entry, kind, action)
            if not answer:
                return {"status": "ok"}
            packed = gzip.compress(np.packbits(entry.require_viewer().mask, axis=None).tobytes(), compresslevel=1)
        return Response(packed, media_type="application/octet-stream", headers={"Content-Encoding": "gzip"})

    return await run_in_threadpool(work)


def _true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")
