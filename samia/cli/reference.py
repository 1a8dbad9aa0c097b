"""The click command behind ``samia``'s Typer app, for the generated command-line reference
(``docs/reference/cli.md`` renders it with mkdocs-click, so the page cannot drift from the code)."""

from __future__ import annotations

import typer

from samia.cli.main import app

command = typer.main.get_command(app)
"""Every ``samia`` command with its options and help, as click sees them."""
