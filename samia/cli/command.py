"""The click command class of every ``samia`` verb: help that reads like a man page."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand


class SamiaCommand(TyperCommand):
    """A typer command whose arguments show their metavar only (``IMAGE``, ``DIR...``), not typer's
    type placeholder beside it (``<path>``, ``<list[Path]>``); options carry their own metavars; and
    whose line in ``samia --help`` is its first sentence whole, wrapped, never cut with "..."."""

    def get_short_help_str(self, limit: int = 45) -> str:
        text = " ".join((self.short_help or self.help or "").split("\n\n")[0].split())
        return text.split(". ")[0].rstrip(".") + "." if text else ""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperArgument):
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        return params
