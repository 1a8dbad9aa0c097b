"""Atomic file writes (a file is either its old self or completely new, never half-written) and
file hashes.

Every writer of samia (masks, results journal, embedding cache, checkpoints) goes through
:func:`atomic_write`, so a run killed at any moment leaves no truncated file behind; at most a
hidden ``.<name>.<random>.partial<ending>`` temporary, which :func:`remove_partials` clears.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from samia.errors import ConfigurationError

PARTIAL_PATTERN = ".*.partial*"


def _ending(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(temporary)`` on a new file beside ``path`` (same ending, so format-by-ending
    writers work), then rename it to ``path`` with ``os.replace``. Parent folders are created; the
    temporary is removed if ``write`` fails or the run is interrupted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial{_ending(path)}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""

    def write(temporary: Path) -> None:
        temporary.write_bytes(data)

    return atomic_write(path, write)


def remove_partials(folder: str | Path) -> int:
    """Delete temporaries left in ``folder`` by a killed writer; returns how many were removed."""
    stale = list(Path(folder).glob(PARTIAL_PATTERN))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a file name that is not (Python keeps its bytes as surrogate escapes)
    shows its odd bytes as ``\\xNN``, so it can go into Parquet, CSV, JSON and a terminal."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def safe_name(name: str) -> str:
    """``name`` as one file-name component: every run of characters other than letters, digits,
    ``_``, ``.`` and ``-`` becomes ``_`` (so a case id cannot leave its folder)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: str | Path) -> tuple[int, int, int]:
    """``(size, mtime in ns, inode)`` of a file: what changes when its bytes are rewritten or replaced,
    so a check made on the file once in a process can be trusted until the stamp changes.

    Raises:
        OSError: the file cannot be stat'ed.
    """
    status = Path(path).stat()
    return status.st_size, status.st_mtime_ns, status.st_ino


class FolderLock:
    """An exclusive lock on an output folder (results, annotations) for one process (``fcntl.flock`` on ``DIR/.lock``).

    A second process is refused at once with :class:`~samia.errors.ConfigurationError`; a lock left
    by a killed process is free (the kernel drops it with the process), so it is taken over.
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / ".lock"
        self._handle: TextIO | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigurationError(
                f"{self.path.parent} is in use by another samia process ({holder}); wait for it or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None
