"""``samia models`` and ``samia strategies``: what can be asked for."""

from __future__ import annotations


def models_command() -> None:
    """List the registered models."""
    from rich.console import Console
    from rich.table import Table

    from samia.models import MODEL_REGISTRY

    table = Table("model", "checkpoint", "description")
    for name, spec in MODEL_REGISTRY.items():
        table.add_row(name, "required" if spec.needs_checkpoint else "bundled/random", spec.description)
    Console().print(table)


def strategies_command() -> None:
    """List the prompt strategies and their exact rules."""
    from rich.console import Console
    from rich.table import Table

    from samia.prompts import STRATEGIES

    table = Table("strategy", "rule")
    for name, strategy in STRATEGIES.items():
        table.add_row(name, strategy.description)
    Console().print(table)
