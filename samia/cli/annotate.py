"""``samia annotate``: serve the annotation page for a data folder on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samia.cli.choices import BACKEND_HELP, PRECISION_HELP
from samia.cli.listen import LOOPBACK
from samia.cli.options import Checkpoint, ModelName
from samia.models.catalogue import DEFAULT_MODEL


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
    rater: Annotated[
        str | None,
        typer.Option(
            help="Whose masks OUT holds (one --out folder per rater; samia report compares them).", metavar="NAME"
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (other than loopback: reachable from the network).", metavar="IP")
    ] = LOOPBACK,
    port: Annotated[int, typer.Option(help="Port (0: any free port).", metavar="N")] = 8765,
) -> None:
    """Serve one annotation page for DATA on HOST:PORT and print its URL (with its access token)."""
    import secrets

    from samia.annotate.app import create_app
    from samia.annotate.server import AnnotationServer
    from samia.cli.listen import bind, is_loopback, run
    from samia.cli.paths import check_output_folder

    check_output_folder(out)
    listener, url = bind(host, port)
    segmenter = None
    if not manual:
        from samia.models import build_model
        from samia.models.interface import runtime_label

        segmenter = build_model(model, checkpoint, backend=backend, precision=precision)
        typer.echo(f"model {model} on {runtime_label(segmenter)}")
    server = AnnotationServer(data, out, segmenter, model_name=None if manual else model, rater=rater)
    if not is_loopback(host):
        typer.secho(
            f"warning: listening on {host}: anyone who can reach this machine and has the URL sees these images",
            fg=typer.colors.YELLOW,
            err=True,
        )
    token = secrets.token_urlsafe(24)
    who = f", rater {rater}" if rater else ""
    typer.echo(f"samia annotate: {len(server.rooms)} case(s), {server.mode}{who}, saving to {Path(out).resolve()}")
    for problem in server.problems:
        typer.secho(f"warning: skipped {problem}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"open {url}/?token={token}", color=False)
    try:
        run(create_app(server, token), listener)
    finally:
        server.close()
