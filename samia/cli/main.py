"""The ``samia`` command line: one verb a module, heavy imports inside each command."""

from __future__ import annotations

import sys

import typer

from samia.cli.evaluate import evaluate_command
from samia.cli.finetune import finetune_command
from samia.cli.listing import models_command, strategies_command
from samia.cli.report import report_command
from samia.cli.segment import segment_command

app = typer.Typer(
    name="samia",
    help="Segment Anything in Medical Imaging, Assessed and Adapted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("segment")(segment_command)
app.command("evaluate")(evaluate_command)
app.command("finetune")(finetune_command)
app.command("models")(models_command)
app.command("strategies")(strategies_command)
app.command("report")(report_command)


def main() -> None:
    """Console entry point: bad input ends in one clear line on stderr and exit code 2."""
    from samia.errors import SamiaError

    try:
        app()
    except SamiaError as error:
        typer.secho(f"error: {' '.join(str(error).split())}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except MemoryError:
        typer.secho(
            "error: out of memory; the input is larger than this machine can hold (see SAMIA_MAX_PIXELS)",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
