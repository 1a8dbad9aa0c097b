"""``samia annotate``: serve the annotation page for a data folder on this machine."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from samia.cli.choices import BACKEND_HELP, PRECISION_HELP
from samia.cli.options import Checkpoint, ModelName
from samia.models.catalogue import DEFAULT_MODEL

LOOPBACK = "127.0.0.1"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def annotate_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="A dataset folder (any layout samia reads, masks optional), a folder of images, or one image.",
            metavar="DATA",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Annotation folder: one folder per case (labels, state), log.jsonl.", metavar="DIR"),
    ],
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP, metavar="NAME")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP, metavar="NAME")] = "fp32",
    manual: Annotated[
        bool, typer.Option("--manual", help="No model: brush, polygon and eraser only (the study's baseline).")
    ] = False,
    host: Annotated[
        str, typer.Option(help="Address to listen on (other than loopback: reachable from the network).", metavar="IP")
    ] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port (0: any free port).", metavar="N")] = 8765,
) -> None:
    """Serve one annotation page for DATA on HOST:PORT and print its URL (with its access token)."""
    import secrets

    import uvicorn

    from samia.annotate.app import create_app
    from samia.annotate.server import AnnotationServer
    from samia.cli.paths import check_output_folder
    from samia.errors import ConfigurationError

    check_output_folder(out)
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"--port {port} is not a port (0..65535)")
    segmenter = None
    if not manual:
        from samia.models import build_model
        from samia.models.interface import runtime_label

        segmenter = build_model(model, checkpoint, backend=backend, precision=precision)
        typer.echo(f"model {model} on {runtime_label(segmenter)}")
    server = AnnotationServer(data, out, segmenter, model_name=None if manual else model)
    if not _is_loopback(host):
        typer.secho(
            f"warning: listening on {host}: anyone who can reach this machine and has the URL sees these images",
            fg=typer.colors.YELLOW,
            err=True,
        )
    token = secrets.token_urlsafe(24)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(128)  # connections wait in the backlog from now on, before the server runs
    except OSError as error:
        raise ConfigurationError(f"--host {host} --port {port}: cannot listen there ({error.strerror})") from None
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    bound = listener.getsockname()[1]
    typer.echo(f"samia annotate: {len(server.rooms)} case(s), {server.mode}, saving to {Path(out).resolve()}")
    for problem in server.problems:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"open http://{shown}:{bound}/?token={token}", color=False)
    config = uvicorn.Config(create_app(server, token), log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        server.close()
        listener.close()
