"""Checks of the paths a command is given, made before any model runs."""

from __future__ import annotations

import os
from pathlib import Path

from samia.errors import ConfigurationError


def check_output_file(out: Path, *inputs: Path) -> None:
    """``out`` can be written as a file: not a folder, not one of ``inputs``, its folder writable.

    Raises:
        ConfigurationError: naming ``out`` and the problem.
    """
    if out.is_dir():
        raise ConfigurationError(f"--out {out} is a folder; give a file name (e.g. mask.png)")
    resolved = out.resolve()
    for source in inputs:
        if resolved == Path(source).resolve():
            raise ConfigurationError(f"--out {out} is the input file itself; it would be overwritten")
    _check_writable_ancestor(out, resolved.parent)
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigurationError(f"--out {out} exists and is read-only")


def check_output_folder(out: Path) -> None:
    """``out`` can be used as an output folder: not a file, writable (created later).

    Raises:
        ConfigurationError: naming ``out`` and the problem.
    """
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"--out {out} is a file; give a folder")
    _check_writable_ancestor(out, out.resolve())


def _check_writable_ancestor(out: Path, folder: Path) -> None:
    """``folder``, or its nearest existing ancestor (where the missing part will be created), is a
    folder this process may write into."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(f"--out {out}: cannot write into {existing or folder} (not a writable folder)")
