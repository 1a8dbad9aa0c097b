"""The request-body rules every samia server applies, whatever its web framework: a declared
length, a cap, and a deadline for the body to arrive (a stalled client holds no worker)."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from samia.settings import BODY_TIMEOUT_SECONDS

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Request(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def headers(self) -> Any: ...

    async def body(self) -> bytes: ...


async def refused_body(request: _Request, max_bytes: int, cap_name: str = "") -> tuple[int, str] | None:
    """``(status, message)`` when ``request``'s body breaks a rule, else None (the body is then
    read and kept for the endpoint). ``cap_name``: the option that sets ``max_bytes``, named in
    the message."""
    if request.method not in BODY_METHODS:
        return None
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return 411, "a request body needs a Content-Length"
    if int(length) > max_bytes:
        return 413, f"request body of {length} bytes; at most {max_bytes}{f' ({cap_name})' if cap_name else ''}"
    timeout = BODY_TIMEOUT_SECONDS.value()
    try:
        await asyncio.wait_for(request.body(), timeout)
    except TimeoutError:
        return 408, f"the request body did not arrive within {timeout:g} s"
    return None
