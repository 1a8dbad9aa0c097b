"""``samia models``, ``samia strategies`` and ``samia segment-codes``: what can be asked for."""

from __future__ import annotations

from typing import Annotated

import typer


def models_command() -> None:
    """List the registered models, and where each one's weights come from (no model is loaded)."""
    from rich.console import Console
    from rich.table import Table

    from samia.models.catalogue import MODEL_CATALOGUE

    table = Table("model", "weights", "description")
    for name, entry in MODEL_CATALOGUE.items():
        table.add_row(name, entry.weights_line(), entry.description)
    Console().print(table)


def strategies_command(
    protocol: Annotated[
        str, typer.Option(help="Rules of which protocol: samia or huang2024.", metavar="NAME")
    ] = "samia",
) -> None:
    """List the prompt strategies and their exact rules under PROTOCOL."""
    from rich.console import Console
    from rich.table import Table

    from samia.prompts import strategy_registry
    from samia.prompts.protocols import get_protocol
    from samia.volume import VOLUME_STRATEGIES

    chosen = get_protocol(protocol)
    table = Table("strategy", "rule", title=f"protocol {chosen.name}: {chosen.description}")
    for name, strategy in strategy_registry(protocol=protocol).items():
        table.add_row(name, strategy.description)
    for name, rule in VOLUME_STRATEGIES.items():
        table.add_row(name, f"(volumes, level = volume) {rule}")
    Console().print(table)


def segment_codes_command(
    word: Annotated[
        str, typer.Argument(help="Part of a keyword, meaning or SNOMED CT id (default: list all).", metavar="WORD")
    ] = "",
) -> None:
    """List the SNOMED CT segment types a DICOM-SEG segment can be coded as (`segment --segment-code`)."""
    from rich.console import Console
    from rich.table import Table

    from samia.io.segment_codes import find_segment_codes

    found = find_segment_codes(word)
    table = Table(title=f"{len(found)} of DICOM CID 7151")
    table.add_column("--segment-code", overflow="fold")  # the keyword is copied whole, never cut short
    for heading in ("SNOMED CT", "meaning", "category"):
        table.add_column(heading)
    for keyword, code in found:
        table.add_row(keyword, code.type.value, code.type.meaning, code.category.meaning)
    Console().print(table)
