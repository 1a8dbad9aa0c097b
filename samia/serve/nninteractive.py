"""nnInteractive's remote inference protocol (v2), as ``nninteractive-client`` speaks it.

Every path but ``/healthz`` needs the server's key as ``Authorization: Bearer <key>`` when the
server has one; every session path needs the lease token from ``/claim`` in ``X-Lease-Token``
(unknown or expired: 410; no free session: 503). Arrays travel as NNIA bodies
(:mod:`samia.serve.arrays`) with JSON metadata in the ``X-Meta`` header; an interaction answers
``{"ran_prediction", "bbox"}`` in ``X-Meta`` and the target buffer's changed sub-box as the body, so
the client patches only that region of its buffer.

Images are ``(C, D0, D1, D2)``; samia's models read the first channel. Coordinates are voxel
indices per image axis; boxes are half-open ``[[low, high), ...]``. What each interaction becomes
is :mod:`samia.serve.viewer`'s to say.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from samia.errors import SamiaError
from samia.serve.arrays import pack_array, unpack_array
from samia.serve.sessions import AtCapacityError, SessionEntry, SessionGoneError, ViewerSessions
from samia.serve.viewer import Change
from samia.settings import MAX_PIXELS
from samia.version import __version__

_log = logging.getLogger("samia.serve")

META_HEADER = "X-Meta"
LEASE_HEADER = "X-Lease-Token"
TARGET_DTYPES = frozenset({"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool"})


def capabilities(do_autozoom: bool) -> dict[str, Any]:
    """What the client mirrors as its session's attributes: samia takes points, 2D boxes,
    scribbles, lassos and an initial segmentation; no 3D boxes; undo."""
    return {
        "supported_interactions": {"points": True, "bbox2d": True, "bbox3d": False, "scribble": True, "lasso": True},
        "channel_mapping": {},
        "num_interaction_channels": 0,
        "supports_initial_label": True,
        "supports_zero_shot_label_refinement": True,
        "preferred_scribble_thickness": [2, 2, 2],
        "interaction_decay": None,
        "patch_size": None,
        "do_autozoom": do_autozoom,
        "inference_session_version": f"samia {__version__}",
        "license": "the model's own (samia models lists it)",
        "supports_undo": True,
    }


def add_routes(app: FastAPI, sessions: ViewerSessions) -> None:
    """Mount the protocol's paths on ``app`` (the key check is the app's guard)."""
    for kind, status in ((AtCapacityError, 503), (SessionGoneError, 410)):
        app.add_exception_handler(kind, _answer_with(status))
    router = APIRouter()
    _add_lease_routes(router, sessions)
    _add_image_routes(router, sessions)
    _add_interaction_routes(router, sessions)
    app.include_router(router)


def _answer_with(status: int) -> Any:
    async def answer(request: Request, error: Exception) -> JSONResponse:
        headers = {"Retry-After": "10"} if status == 503 else None
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    return answer


def _entry(sessions: ViewerSessions, request: Request, active: bool = False) -> SessionEntry:
    return sessions.get(request.headers.get(LEASE_HEADER), active=active)


def _add_lease_routes(router: APIRouter, sessions: ViewerSessions) -> None:
    """Health, capabilities, and the lease's claim, heartbeat, status and release."""

    @router.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    @router.get("/capabilities")
    def get_capabilities() -> dict[str, Any]:
        return capabilities(do_autozoom=False)

    @router.post("/claim")
    def claim() -> dict[str, Any]:
        entry = sessions.claim()
        _log.info("claim session=%s sessions=%d/%d", entry.name, len(sessions), sessions.max_sessions)
        return {
            "lease_token": entry.token,
            "idle_timeout_seconds": sessions.idle_seconds,
            "liveness_timeout_seconds": sessions.liveness_seconds,
            "max_sessions": sessions.max_sessions,
        }

    @router.post("/release")
    def release(request: Request) -> dict[str, Any]:
        sessions.release(request.headers.get(LEASE_HEADER))
        return {"released": True}

    @router.post("/heartbeat")
    def heartbeat(request: Request) -> dict[str, Any]:
        return {"remaining_seconds": sessions.remaining_seconds(_entry(sessions, request))}

    @router.get("/lease_status")
    def lease_status(request: Request) -> dict[str, Any]:
        entry = sessions.peek(request.headers.get(LEASE_HEADER))
        return {"remaining_seconds": sessions.remaining_seconds(entry), "idle_timeout_seconds": sessions.idle_seconds}


def _add_image_routes(router: APIRouter, sessions: ViewerSessions) -> None:
    """The image, the target buffer, and what resets or rewinds the object."""

    @router.post("/set_image")
    async def set_image(request: Request) -> dict[str, Any]:
        entry = _entry(sessions, request, active=True)
        meta, body = _meta(request), await request.body()

        def work() -> dict[str, Any]:
            image = unpack_array(body, max_elements=int(MAX_PIXELS.value()))
            if image.ndim != 4 or image.shape[0] < 1:
                raise SamiaError(f"an image is (C, D0, D1, D2), got shape {image.shape}")
            spacing = _spacing((meta.get("image_properties") or {}).get("spacing"))
            with entry.lock:
                first = image[0] if image.shape[0] == 1 else image[0].copy()  # the other channels are freed
                sessions.set_image(entry, first, spacing)
                entry.target = None
            _log.info("set_image session=%s shape=%s spacing=%s", entry.name, list(image.shape), spacing)
            return {"original_image_shape": list(image.shape)}

        return await run_in_threadpool(work)

    @router.post("/set_target_buffer")
    async def set_target_buffer(request: Request) -> dict[str, Any]:
        entry, payload = _entry(sessions, request, active=True), await _json(request)
        shape, dtype = tuple(int(s) for s in payload.get("shape", ())), str(payload.get("dtype", ""))
        if dtype not in TARGET_DTYPES:
            raise SamiaError(f"target buffer dtype {dtype!r}; one of {', '.join(sorted(TARGET_DTYPES))}")
        with entry.lock:
            viewer = entry.require_viewer()
            if shape != viewer.shape:
                raise SamiaError(f"target buffer of shape {list(shape)}; the image is {list(viewer.shape)}")
            viewer.reset()
            entry.target = (shape, dtype)
        return {}

    @router.post("/set_do_autozoom")
    def set_do_autozoom(request: Request) -> dict[str, Any]:
        _entry(sessions, request)  # samia segments whole slices: nothing to zoom
        return {}

    @router.post("/reset_interactions")
    def reset_interactions(request: Request) -> dict[str, Any]:
        entry = _entry(sessions, request, active=True)
        with entry.lock:
            entry.require_viewer().reset()
        _log.info("reset session=%s", entry.name)
        return {}

    @router.post("/undo")
    def undo(request: Request) -> Response:
        entry = _entry(sessions, request, active=True)
        with entry.lock:
            return _reply(entry, sessions.interact(entry, "undo", lambda viewer: viewer.undo()))

    @router.post("/predict")
    def predict(request: Request) -> Response:
        entry = _entry(sessions, request, active=True)
        with entry.lock:  # every interaction predicted; one the reply deadline ended goes on
            return _reply(entry, sessions.interact(entry, "predict", lambda viewer: viewer.finish()))


def _add_interaction_routes(router: APIRouter, sessions: ViewerSessions) -> None:
    """Points, boxes, scribbles, lassos and an initial segmentation."""

    @router.post("/add_bbox_interaction")
    async def add_bbox(request: Request) -> Response:
        entry, box, positive = await _placed(sessions, request, "bbox_coords", "[[low, high), ...] per image axis")
        return await _interact(sessions, entry, "bbox", lambda viewer: viewer.add_box(box, positive))

    @router.post("/add_point_interaction")
    async def add_point(request: Request) -> Response:
        entry, point, positive = await _placed(sessions, request, "coordinates", "one voxel index per image axis")
        return await _interact(sessions, entry, "point", lambda viewer: viewer.add_point(tuple(point), positive))

    @router.post("/add_scribble_interaction")
    async def add_scribble(request: Request) -> Response:
        entry, drawing, positive = await _drawing(sessions, request)
        return await _interact(sessions, entry, "scribble", lambda viewer: viewer.add_scribble(drawing, positive))

    @router.post("/add_lasso_interaction")
    async def add_lasso(request: Request) -> Response:
        entry, drawing, positive = await _drawing(sessions, request)
        return await _interact(sessions, entry, "lasso", lambda viewer: viewer.add_lasso(drawing, positive))

    @router.post("/add_initial_seg_interaction")
    async def add_initial_seg(request: Request) -> Response:
        entry, drawing, _ = await _drawing(sessions, request)
        return await _interact(sessions, entry, "initial_seg", lambda viewer: viewer.set_initial(drawing))


async def _placed(
    sessions: ViewerSessions, request: Request, field: str, meaning: str
) -> tuple[SessionEntry, list[Any], bool]:
    """The session, the JSON body's ``field`` (a list: ``meaning``) and ``include_interaction``."""
    entry, payload = _entry(sessions, request, active=True), await _json(request)
    value = payload.get(field)
    if not isinstance(value, list):
        raise SamiaError(f"{field} is {meaning}")
    return entry, value, bool(payload.get("include_interaction", True))


async def _drawing(sessions: ViewerSessions, request: Request) -> tuple[SessionEntry, np.ndarray, bool]:
    """The session, the drawn array of the body and ``include_interaction`` of ``X-Meta``."""
    entry, meta = _entry(sessions, request, active=True), _meta(request)
    drawing = unpack_array(await request.body(), max_elements=int(MAX_PIXELS.value()))
    return entry, drawing, bool(meta.get("include_interaction", True))


async def _interact(sessions: ViewerSessions, entry: SessionEntry, kind: str, action: Any) -> Response:
    """Run ``action`` on the entry's viewer off the event loop, answer the changed sub-box."""

    def work() -> Response:
        with entry.lock:
            entry.require_viewer()
            if entry.target is None:
                raise SamiaError("no target buffer in this session: set one first (set_target_buffer)")
            return _reply(entry, sessions.interact(entry, kind, action))

    return await run_in_threadpool(work)


def _reply(entry: SessionEntry, change: Change | None) -> Response:
    """``X-Meta`` ``{"ran_prediction", "bbox"}`` and the target buffer's sub-box in ``bbox``."""
    if change is None:
        return _packed({"ran_prediction": False, "bbox": None}, b"")
    if change.bbox is None or entry.target is None:
        return _packed({"ran_prediction": True, "bbox": None}, b"")
    viewer = entry.require_viewer()
    region = tuple(slice(low, high) for low, high in change.bbox)
    sub = viewer.mask[region].astype(np.dtype(entry.target[1]))
    meta = {"ran_prediction": True, "bbox": change.bbox, "dtype": sub.dtype.name, "shape": list(sub.shape)}
    return _packed(meta, pack_array(sub))


def _packed(meta: dict[str, Any], body: bytes) -> Response:
    return Response(body, media_type="application/octet-stream", headers={META_HEADER: json.dumps(meta)})


def _meta(request: Request) -> dict[str, Any]:
    text = request.headers.get(META_HEADER)
    if not text:
        return {}
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        raise SamiaError(f"the {META_HEADER} header is not JSON ({error.msg})") from None
    if not isinstance(meta, dict):
        raise SamiaError(f"the {META_HEADER} header is a JSON object")
    return meta


async def _json(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as error:
        raise SamiaError(f"the body is not JSON ({error.msg})") from None
    if not isinstance(payload, dict):
        raise SamiaError("the body is a JSON object")
    return payload


def _spacing(value: Any) -> tuple[float, float, float] | None:
    """The image's voxel size per axis from ``image_properties["spacing"]``; None when absent."""
    if value is None:
        return None
    try:
        spacing = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise SamiaError(f"image_properties.spacing {value!r} is not numbers") from None
    if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise SamiaError(f"image_properties.spacing {list(spacing)} is not 3 positive sizes")
    return (spacing[0], spacing[1], spacing[2])
