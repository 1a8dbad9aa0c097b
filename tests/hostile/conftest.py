"""The real CLI entry point for the hostile-input tests (helpers: ``hostile_files``)."""

from __future__ import annotations

import sys

import pytest

from samia.cli.main import main


@pytest.fixture
def cli(monkeypatch, capfd):
    """``cli(*args) -> (exit code, stdout, stderr)`` through ``samia.cli.main.main``."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["samia", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capfd.readouterr()
        return code, captured.out, captured.err

    return run
