"""The ``samia`` command line: one verb a module, heavy imports inside each command."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, TextIO

import typer

from samia.cli.annotate import annotate_command
from samia.cli.command import SamiaCommand
from samia.cli.evaluate import evaluate_command
from samia.cli.finetune import finetune_command
from samia.cli.finetune_study import finetune_study_command
from samia.cli.listing import models_command, segment_codes_command, strategies_command
from samia.cli.report import report_command
from samia.cli.segment import SegmentCommand, segment_command
from samia.cli.serve import serve_command

app = typer.Typer(
    name="samia",
    help="Segment Anything in Medical Imaging, Assessed and Adapted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: readable placeholders (FILE, X,Y), nothing truncated
)


def _print_version(value: bool) -> None:
    if value:
        from samia.version import __version__

        typer.echo(f"samia {__version__}")
        raise typer.Exit()


@app.callback()
def _samia(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print samia's version and exit.", callback=_print_version, is_eager=True, metavar=""
        ),
    ] = False,
) -> None:
    """Segment Anything in Medical Imaging, Assessed and Adapted."""


app.command("segment", cls=SegmentCommand)(segment_command)
app.command("evaluate", cls=SamiaCommand)(evaluate_command)
app.command("finetune", cls=SamiaCommand)(finetune_command)
app.command("finetune-study", cls=SamiaCommand)(finetune_study_command)
app.command("models", cls=SamiaCommand)(models_command)
app.command("strategies", cls=SamiaCommand)(strategies_command)
app.command("segment-codes", cls=SamiaCommand)(segment_codes_command)
app.command("report", cls=SamiaCommand)(report_command)
app.command("annotate", cls=SamiaCommand)(annotate_command)
app.command("serve", cls=SamiaCommand)(serve_command)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Input warnings as one line on stderr (``warning: FILE: problem``); others as Python shows them."""
    from samia.errors import InputWarning

    if issubclass(category, InputWarning):
        typer.secho(f"warning: {' '.join(str(message).split())}", fg=typer.colors.YELLOW, err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main() -> None:
    """Console entry point: bad input ends in one clear line on stderr and exit code 2; input
    warnings are one line each on stderr."""
    from samia.errors import SamiaError

    warnings.showwarning = _show_warning
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
    finally:
        warnings.showwarning = _python_show_warning


if __name__ == "__main__":
    main()
