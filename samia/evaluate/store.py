"""Crash-safe results store of an evaluation run.

Layout of a results folder ``DIR``::

    DIR/config.yaml          the run's configuration (written first)
    DIR/.lock                held (``flock``) by the one process writing to DIR; the kernel
                             releases it when that process dies, so a killed run's lock is free
    DIR/.journal/units/      one Parquet file per finished unit (one 2D image or one volume slice),
                             written atomically: a unit is either fully there or absent
    DIR/.journal/cases/      one marker per case whose every unit finished
    DIR/.journal/errors/     one JSON record per failed unit, named by case and unit (removed when a
                             re-run succeeds; all of a case's when the whole case succeeds)
    DIR/.journal/warnings/   one JSON list per case of the input warnings its reading and evaluation
                             gave (replaced when the case is evaluated again)
    DIR/results.parquet      all unit rows, rebuilt from the journal at the end of every run
    DIR/errors.csv           all failures (unit, file, error type, message)
    DIR/warnings.csv         all input warnings (case, first slice, file, warning, message, count)

A run killed at any moment leaves only whole units in the journal; re-running skips them, so every
row ends up exactly once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from samia.errors import ConfigurationError
from samia.evaluate.schema import RESULT_SCHEMA, rows_to_table
from samia.files import atomic_write_bytes, printable, remove_partials

ERROR_COLUMNS = ("case", "slice", "path", "error", "message")
WARNING_COLUMNS = ("case", "slice", "path", "warning", "message", "count")


def _hashed(name: str) -> str:
    """A file name for ``name``; file names that are not valid UTF-8 (surrogate escapes) hash too."""
    return hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def unit_key(case: str, slice_index: int) -> str:
    """Key of one unit of work: a case (``slice_index = -1`` for 2D) or one slice of a volume."""
    return f"{case}|{slice_index}"


def _visible(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` matching ``pattern``, sorted, without hidden ``.partial`` temporaries
    (``pathlib`` globs match hidden files)."""
    return sorted(p for p in folder.glob(pattern) if not p.name.startswith("."))


class ResultsStore:
    """Journal-backed store of result rows for one results folder.

    Args:
        directory: the results folder (created if missing).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._units = self.directory / ".journal" / "units"
        self._cases = self.directory / ".journal" / "cases"
        self._errors = self.directory / ".journal" / "errors"
        self._warnings = self.directory / ".journal" / "warnings"
        for folder in (self._units, self._cases, self._errors, self._warnings):
            folder.mkdir(parents=True, exist_ok=True)
            remove_partials(folder)  # left by a run killed mid-write

    @property
    def results_path(self) -> Path:
        return self.directory / "results.parquet"

    @property
    def errors_path(self) -> Path:
        return self.directory / "errors.csv"

    @property
    def warnings_path(self) -> Path:
        return self.directory / "warnings.csv"

    def _unit_path(self, key: str) -> Path:
        return self._units / f"{_hashed(key)}.parquet"

    def _error_path(self, key: str) -> Path:
        """``<case hash>-<unit hash>.json``: a case's errors are found by its prefix, without reading them."""
        case = key.rsplit("|", 1)[0]
        return self._errors / f"{_hashed(case)}-{_hashed(key)}.json"

    def has_unit(self, key: str) -> bool:
        """True when the unit's journal file is there and whole; a damaged one is removed (the unit
        is then computed again)."""
        path = self._unit_path(key)
        if not path.is_file():
            return False
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException):
            path.unlink(missing_ok=True)
            return False
        return True

    def is_empty(self) -> bool:
        """True when no unit has been written (an earlier run failed before its first row)."""
        return not _visible(self._units, "*.parquet")

    def case_done(self, case: str) -> bool:
        return (self._cases / _hashed(case)).is_file()

    def mark_case_done(self, case: str) -> None:
        """Record that every unit of ``case`` finished, and drop the case's errors of earlier runs."""
        for path in _visible(self._errors, f"{_hashed(case)}-*.json"):
            path.unlink(missing_ok=True)
        atomic_write_bytes(self._cases / _hashed(case), case.encode("utf-8", "surrogateescape"))

    def write_unit(self, key: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        """Store the rows of one finished unit atomically (``rows`` may be empty) and clear its error.

        ``meta`` (e.g. the number of objects skipped as too small) is kept in the file's metadata.
        """
        table = rows_to_table(rows).replace_schema_metadata({"samia_unit": json.dumps({"key": key, **meta})})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write_bytes(self._unit_path(key), sink.getvalue().to_pybytes())
        self._error_path(key).unlink(missing_ok=True)

    def record_error(self, key: str, case: str, slice_index: int, path: str, error: BaseException) -> None:
        """Record the failure of one unit (kept until the unit succeeds in a later run)."""
        record = {
            "case": printable(case),
            "slice": slice_index,
            "path": printable(str(path)),
            "error": type(error).__name__,
            "message": printable(" ".join(str(error).split()) or type(error).__name__),
        }
        atomic_write_bytes(self._error_path(key), json.dumps(record).encode())

    def record_warnings(self, case: str, records: list[dict[str, Any]]) -> None:
        """Replace the warnings of ``case`` with ``records`` (rows of :data:`WARNING_COLUMNS`)."""
        path = self._warnings / f"{_hashed(case)}.json"
        if records:
            atomic_write_bytes(path, json.dumps(records).encode())
        else:
            path.unlink(missing_ok=True)

    def warnings(self) -> pd.DataFrame:
        records = [record for p in _visible(self._warnings, "*.json") for record in json.loads(p.read_text())]
        frame = pd.DataFrame(records, columns=list(WARNING_COLUMNS))
        return frame.sort_values(["case", "slice"], kind="stable").reset_index(drop=True)

    def unit_tables(self) -> Iterable[tuple[pa.Table, dict[str, Any]]]:
        for path in _visible(self._units, "*.parquet"):
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {}).get(b"samia_unit", b"{}"))
            yield table, meta

    def errors(self) -> pd.DataFrame:
        records = [json.loads(p.read_text()) for p in _visible(self._errors, "*.json")]
        frame = pd.DataFrame(records, columns=list(ERROR_COLUMNS))
        return frame.sort_values(["case", "slice"], kind="stable").reset_index(drop=True)

    def consolidate(self, sort_by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rebuild ``results.parquet``, ``errors.csv`` and ``warnings.csv`` from the journal (atomic replace).

        Returns:
            ``(results, unit_meta)``: every row once, sorted by ``sort_by``; and one row of metadata
            per finished unit.
        """
        tables, metas = [], []
        for table, meta in self.unit_tables():
            metas.append(meta)
            tables.append(table.replace_schema_metadata(None).cast(RESULT_SCHEMA))
        combined = pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()
        results = combined.to_pandas().sort_values(sort_by, kind="stable").reset_index(drop=True)
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(results, schema=RESULT_SCHEMA, preserve_index=False), sink)
        atomic_write_bytes(self.results_path, sink.getvalue().to_pybytes())
        atomic_write_bytes(self.errors_path, self.errors().to_csv(index=False).encode())
        atomic_write_bytes(self.warnings_path, self.warnings().to_csv(index=False).encode())
        return results, pd.DataFrame(metas)


class FolderLock:
    """An exclusive lock on a results folder for one process (``fcntl.flock`` on ``DIR/.lock``).

    A second process is refused at once with :class:`~samia.errors.ConfigurationError`; a lock left
    by a killed process is free (the kernel drops it with the process), so it is taken over.
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / ".lock"
        self._handle = None

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
                f"{self.path.parent} is in use by another samia run ({holder}); wait for it or use another --out"
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
