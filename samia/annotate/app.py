"""The annotation web app: one page and a JSON API over :class:`~samia.annotate.server.AnnotationServer`.

Security (the page shows medical images): every request carries the server's random token (the
``token`` query parameter of the printed URL, then the ``X-Samia-Token`` header); requests from
another origin are refused and no CORS header is ever sent; request bodies are capped at
:data:`MAX_BODY_BYTES`; cases are named by server-made ids only and the page's files by a fixed
list, so no request names a path; a body that does not arrive within ``SAMIA_BODY_TIMEOUT_SECONDS``
is answered 408 (a stalled client holds no worker). Bad requests get a 4xx with a one-line
``detail``; an unexpected failure a 500 with the error's type and message, never a traceback.

Leases (:mod:`samia.leases`): the page names itself in ``X-Samia-Client``, opens a case (claim),
sends ``heartbeat`` while it is shown and ``close`` when it goes. A 409 says why in ``reason``:
``held`` (another page holds the case: ask before taking it over), ``taken_over`` (this page lost
it), ``expired`` (open it again), ``unaccepted`` (the action would drop a mask not yet accepted).
"""

from __future__ import annotations

import hmac
import logging
import re
from importlib.resources import files
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from samia.annotate.drafts import Edit
from samia.annotate.server import AnnotationServer, CaseNotOpenError, UnknownCaseError
from samia.annotate.session import DraftNotAcceptedError
from samia.errors import SamiaError
from samia.leases import HeldElsewhereError, LeaseLostError
from samia.request_bodies import refused_body

_log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"""Largest request body accepted (a long brush stroke is a few kB)."""

MAX_COORDS = 8192
"""Most numbers in one edit's ``coords``."""

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
"""The page's files, by name (nothing else is served)."""

CLIENT_HEADER = "X-Samia-Client"
TOKEN_HEADER = "X-Samia-Token"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenBody(_Body):
    force: bool = False


class EditBody(_Body):
    kind: Literal["point", "box", "brush", "erase", "polygon"]
    coords: list[float] = Field(min_length=2, max_length=MAX_COORDS)
    positive: bool = True
    radius: float = Field(default=0.0, ge=0.0, le=1000.0)
    name: str | None = Field(default=None, max_length=200)  # of the object this edit starts, if none is started


class ObjectBody(_Body):
    name: str | None = Field(default=None, max_length=200)
    label: int | None = Field(default=None, ge=1, le=65535)
    discard: bool = False


class SliceBody(_Body):
    index: int = Field(ge=0)
    discard: bool = False


class PresetBody(_Body):
    name: str = Field(max_length=64)
    discard: bool = False


def _error(status: int, message: str, reason: str | None = None) -> JSONResponse:
    content = {"detail": message} if reason is None else {"detail": message, "reason": reason}
    return JSONResponse(content, status_code=status)


ERROR_STATUS: tuple[tuple[type[Exception], int, str | None], ...] = (
    (UnknownCaseError, 404, None),
    (HeldElsewhereError, 409, "held"),
    (CaseNotOpenError, 409, "expired"),
    (DraftNotAcceptedError, 409, "unaccepted"),
    (SamiaError, 422, None),
    (ValueError, 400, None),
)
"""The status (and 409 ``reason``) each kind of refusal is answered with (its message as ``detail``)."""


def _answer_with(status: int, reason: str | None) -> Any:
    async def answer(request: Request, error: Exception) -> JSONResponse:
        return _error(status, str(error), reason)

    return answer


async def _lost(request: Request, error: Exception) -> JSONResponse:
    taken_over = isinstance(error, LeaseLostError) and error.taken_over
    return _error(409, str(error), "taken_over" if taken_over else "expired")


def _client(request: Request) -> str:
    client = request.headers.get(CLIENT_HEADER, "")
    if not 8 <= len(client) <= 64 or not client.replace("-", "").isalnum():
        raise ValueError(f"every request names its page with a {CLIENT_HEADER} header (8..64 letters/digits)")
    return client


def create_app(server: AnnotationServer, token: str) -> FastAPI:
    """The FastAPI app serving ``server``; every request must carry ``token`` (URL-safe characters,
    as :func:`secrets.token_urlsafe` makes: it is written into the page)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,}", token):
        raise ValueError("the token must be 8 or more URL-safe characters (letters, digits, - and _)")
    app = FastAPI(title="samia annotate", docs_url=None, redoc_url=None, openapi_url=None)
    _add_guard(app, token)
    _add_error_answers(app)
    _add_page(app, token)
    _add_case_routes(app, server)
    return app


def _add_guard(app: FastAPI, token: str) -> None:
    """Every request: the token, the same origin, a bounded body that arrives in time."""

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error(403, "missing or wrong token: open the URL samia annotate printed")
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return _error(403, f"requests from {origin} are refused (no cross-origin access)")
        refused = await refused_body(request, MAX_BODY_BYTES)
        if refused is not None:
            return _error(*refused)
        return await call_next(request)


def _add_error_answers(app: FastAPI) -> None:
    """Each refusal as a 4xx with a one-line ``detail``; anything else a 500 without a traceback."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors())
        return _error(422, f"malformed request: {problems}")

    app.add_exception_handler(LeaseLostError, _lost)
    for kind, status, reason in ERROR_STATUS:
        app.add_exception_handler(kind, _answer_with(status, reason))

    @app.exception_handler(Exception)
    async def failure(request: Request, error: Exception) -> JSONResponse:
        _log.exception("request %s failed", request.url.path)
        return _error(500, f"internal error: {type(error).__name__}: {error}")


def _add_page(app: FastAPI, token: str) -> None:
    """The page and its fixed list of files."""
    page = files("samia.annotate").joinpath("static")

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        html = page.joinpath("index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{token}}", token), headers={"Cache-Control": "no-store"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, f"no page file {name!r}")
        return Response(page.joinpath(name).read_bytes(), media_type=STATIC[name])


def _add_case_routes(app: FastAPI, server: AnnotationServer) -> None:
    """The JSON API over ``server``'s cases."""

    @app.get("/api/cases")
    def cases(request: Request) -> dict[str, Any]:
        listing = server.case_list(request.headers.get(CLIENT_HEADER))
        return {"cases": listing, "problems": server.problems, "mode": server.mode, "rater": server.rater}

    @app.post("/api/cases/{case_id}/open")
    def open_case(case_id: str, body: OpenBody, request: Request) -> dict[str, Any]:
        return server.open(case_id, _client(request), body.force)

    @app.post("/api/cases/{case_id}/close")
    def close_case(case_id: str, request: Request) -> dict[str, Any]:
        server.release(case_id, _client(request))
        return {"closed": case_id}

    @app.post("/api/cases/{case_id}/heartbeat")
    def heartbeat(case_id: str, request: Request) -> dict[str, Any]:
        return server.heartbeat(case_id, _client(request))

    @app.get("/api/cases/{case_id}/state")
    def state(case_id: str, request: Request) -> dict[str, Any]:
        return server.act(case_id, _client(request), lambda session: None)

    @app.get("/api/cases/{case_id}/plane.png")
    def plane(case_id: str, index: int | None = None) -> Response:
        return Response(server.plane_png(case_id, index), media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/cases/{case_id}/edit")
    def edit(case_id: str, body: EditBody, request: Request) -> dict[str, Any]:
        change = Edit(body.kind, tuple(body.coords), body.positive, body.radius)
        return server.edit(case_id, _client(request), change, body.name)

    @app.post("/api/cases/{case_id}/undo")
    def undo(case_id: str, request: Request) -> dict[str, Any]:
        return server.act(case_id, _client(request), lambda session: session.undo())

    @app.post("/api/cases/{case_id}/redo")
    def redo(case_id: str, request: Request) -> dict[str, Any]:
        return server.act(case_id, _client(request), lambda session: session.redo())

    @app.post("/api/cases/{case_id}/accept")
    def accept(case_id: str, request: Request) -> dict[str, Any]:
        return server.act(case_id, _client(request), lambda session: session.accept())

    @app.post("/api/cases/{case_id}/propagate")
    def propagate(case_id: str, request: Request) -> dict[str, Any]:
        return server.act(case_id, _client(request), lambda session: session.propagate())

    @app.post("/api/cases/{case_id}/object")
    def new_object(case_id: str, body: ObjectBody, request: Request) -> dict[str, Any]:
        return server.act(
            case_id, _client(request), lambda session: session.new_object(body.name, body.label, body.discard)
        )

    @app.post("/api/cases/{case_id}/slice")
    def go_to(case_id: str, body: SliceBody, request: Request) -> dict[str, Any]:
        return server.go_to(case_id, _client(request), body.index, body.discard)

    @app.post("/api/cases/{case_id}/preset")
    def preset(case_id: str, body: PresetBody, request: Request) -> dict[str, Any]:
        return server.set_preset(case_id, _client(request), body.name, body.discard)
