"""``samia serve``: a samia model for viewers, over nnInteractive's protocols and MONAI Label's API."""

from __future__ import annotations

from typing import Annotated

import typer

from samia.cli.choices import BACKEND_HELP, PRECISION_HELP
from samia.cli.listen import LOOPBACK
from samia.cli.options import Checkpoint, ModelName
from samia.models.catalogue import DEFAULT_MODEL
from samia.serve import REPLY_SECONDS


def serve_command(
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP, metavar="NAME")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP, metavar="NAME")] = "fp32",
    host: Annotated[
        str, typer.Option(help="Address to listen on (other than loopback: a key is required).", metavar="IP")
    ] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port (0: any free port).", metavar="N")] = 1527,
    key: Annotated[
        str | None,
        typer.Option(
            help="The key clients send as a Bearer token (default: none on loopback, a random one printed "
            "otherwise). Also read from SAMIA_SERVE_KEY.",
            envvar="SAMIA_SERVE_KEY",
            metavar="TEXT",
        ),
    ] = None,
    max_sessions: Annotated[int, typer.Option(help="Most clients at once.", metavar="N", min=1)] = 4,
    idle_minutes: Annotated[
        float, typer.Option(help="A session untouched this long is ended.", metavar="MIN", min=0.1)
    ] = 10.0,
    memory_mb: Annotated[
        int, typer.Option(help="Most MiB of images held by all sessions together.", metavar="MIB", min=16)
    ] = 4096,
    cache_mb: Annotated[int, typer.Option(help="Most MiB of image embeddings kept.", metavar="MIB", min=16)] = 1024,
    max_upload_mb: Annotated[int, typer.Option(help="Largest request body, MiB.", metavar="MIB", min=1)] = 1024,
    reply_seconds: Annotated[
        float,
        typer.Option(
            help="Propagation time after which an interaction answers what it has (the rest follows on the "
            "next request; clients give up after 60 s).",
            metavar="S",
            min=0.0,
        ),
    ] = REPLY_SECONDS,
) -> None:
    """Serve MODEL to viewers (napari-nninteractive, 3D Slicer's nnInteractive and MONAILabel modules, MITK,
    any nnInteractive or MONAI Label client) on HOST:PORT."""
    import logging
    import secrets

    from samia.cli.listen import bind, is_loopback, run
    from samia.errors import ConfigurationError
    from samia.models import build_model
    from samia.models.interface import runtime_label
    from samia.serve.app import create_app
    from samia.serve.sessions import ViewerSessions

    if key is not None and len(key) < 16:
        raise ConfigurationError("--key must be at least 16 characters")
    if key is None and not is_loopback(host):
        key = secrets.token_urlsafe(24)
        typer.echo(f"key (clients send it as a Bearer token): {key}")
    listener, url = bind(host, port)
    segmenter = build_model(model, checkpoint, backend=backend, precision=precision)
    sessions = ViewerSessions(
        segmenter,
        max_sessions=max_sessions,
        idle_seconds=idle_minutes * 60,
        memory_bytes=memory_mb * 2**20,
        cache_bytes=cache_mb * 2**20,
        reply_seconds=reply_seconds,
    )
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s", level=logging.INFO)
    typer.echo(f"samia serve: model {model} on {runtime_label(segmenter)}, up to {max_sessions} sessions")
    typer.echo(f"nnInteractive server URL: {url}", color=False)
    typer.echo(f"MONAI Label server URL: {url}", color=False)
    typer.echo(f"nnInteractive Slicer server URL (older plugin): {url}/slicer", color=False)
    try:
        run(create_app(sessions, key, max_upload_mb * 2**20), listener)
    finally:
        sessions.close()
