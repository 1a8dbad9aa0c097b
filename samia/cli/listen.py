"""Where a samia server listens: loopback unless asked, bound before it runs."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from samia.errors import ConfigurationError

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """``host`` is this machine only (127.0.0.0/8, ::1 or ``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bind(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket on ``host:port`` (0: any free port) and its ``http://host:port`` URL.

    Raises:
        ConfigurationError: not a port, or nothing can listen there.
    """
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"--port {port} is not a port (0..65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(128)  # connections wait in the backlog from now on, before the server runs
    except OSError as error:
        listener.close()
        raise ConfigurationError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return listener, f"http://{shown}:{listener.getsockname()[1]}"


def run(app: Any, listener: socket.socket) -> None:
    """Serve ``app`` on ``listener`` until interrupted (uvicorn, no access log)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()
