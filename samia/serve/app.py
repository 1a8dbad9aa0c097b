"""The ``samia serve`` web app: the viewer protocols behind one guard (nnInteractive's v2 protocol,
the older nnInteractive Slicer server's API under ``/slicer``, MONAI Label's REST API).

The guard, on every request: the server's key (``Authorization: Bearer <key>``) when it has one
(``/healthz`` answers without, as load balancers probe it); a body with a ``Content-Length`` of at
most ``max_body_bytes``, arriving within ``SAMIA_BODY_TIMEOUT_SECONDS``. Refusals are 4xx with a
one-line ``detail``, an unexpected failure a 500 with the error's type and message, never a
traceback. No path a client sends is ever opened: images arrive as bodies.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from samia.errors import SamiaError
from samia.request_bodies import refused_body
from samia.serve import monailabel, nninteractive, slicer
from samia.serve.sessions import MemoryBudgetError, NoImageError, ViewerSessions

_log = logging.getLogger("samia.serve")

OPEN_PATHS = frozenset({"/healthz", "/auth/", "/auth/token"})
"""Paths answered without the key (a probe; MONAI Label's question whether auth is on, and its
token request, which checks the key itself)."""


def create_app(sessions: ViewerSessions, key: str | None, max_body_bytes: int) -> FastAPI:
    """The app serving ``sessions``; ``key`` None: no key asked (a loopback server)."""
    app = FastAPI(title="samia serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if key is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), key.encode())):
                return _error(401, "missing or wrong key: pass the key samia serve printed as a Bearer token")
        refused = await refused_body(request, max_body_bytes, "--max-upload-mb")
        if refused is not None:
            return _error(*refused)
        return await call_next(request)

    for kind, status in ((MemoryBudgetError, 507), (NoImageError, 409), (SamiaError, 400), (ValueError, 400)):
        app.add_exception_handler(kind, _answer_with(status))

    @app.exception_handler(Exception)
    async def failure(request: Request, error: Exception) -> JSONResponse:
        _log.exception("request %s failed", request.url.path)
        return _error(500, f"internal error: {type(error).__name__}: {error}")

    nninteractive.add_routes(app, sessions)
    slicer.add_routes(app, sessions)
    monailabel.add_routes(app, sessions, key)
    return app


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _answer_with(status: int) -> Any:
    async def answer(request: Request, error: Exception) -> JSONResponse:
        return _error(status, str(error))

    return answer
