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
row ends up exactly once. Unit files are named by their key, so a unit written twice (a Ray worker
presumed lost that was only slow) replaces itself: never a duplicate. ``DIR`` may be a filesystem URI
(``samia.evaluation.folders``); only a local folder can be locked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from samia.evaluation.folders import RunFolder, open_folder
from samia.evaluation.schema import RESULT_SCHEMA, conform, rows_to_table
from samia.files import FolderLock, printable

ERROR_COLUMNS = ("case", "slice", "path", "error", "message")
WARNING_COLUMNS = ("case", "slice", "path", "warning", "message", "count")
JOURNAL_FOLDERS = tuple(f".journal/{name}" for name in ("units", "cases", "errors", "warnings"))


def _hashed(name: str) -> str:
    """A file name for ``name``; file names that are not valid UTF-8 (surrogate escapes) hash too."""
    return hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]


NO_SLICE = -1
"""The ``slice`` of a 2D case's unit (and of a case that failed before it was sliced)."""
VOLUME_UNIT = -2
"""The ``slice`` of a volume case's volume-level unit (3D strategies)."""
LISTING = -3
"""The ``slice`` of an error found while listing the dataset (a file that cannot be a case)."""


def unit_key(case: str, slice_index: int) -> str:
    """Key of one unit of work: a case (``slice_index = -1`` for 2D) or one slice of a volume."""
    return f"{case}|{slice_index}"


def table_bytes(table: pa.Table) -> bytes:
    """``table`` as the bytes of a Parquet file."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


class ResultsStore:
    """Journal-backed store of result rows for one results folder.

    Args:
        folder: the results folder (a path, a URI or an opened :data:`~samia.evaluation.folders.RunFolder`).
        clean: remove the temporaries a killed writer left (the driver of a run does, once, before
            any worker writes; a worker opening the store while others write must not).
    """

    def __init__(self, folder: str | Path | RunFolder, clean: bool = True) -> None:
        self.folder = open_folder(folder) if isinstance(folder, (str, Path)) else folder
        for name in JOURNAL_FOLDERS:
            self.folder.make(name)
            if clean:
                self.folder.remove_partials(name)

    def _unit_name(self, key: str) -> str:
        return f".journal/units/{_hashed(key)}.parquet"

    def _error_name(self, key: str) -> str:
        """``<case hash>-<unit hash>.json``: a case's errors are found by its prefix, without reading them."""
        case = key.rsplit("|", 1)[0]
        return f".journal/errors/{_hashed(case)}-{_hashed(key)}.json"

    def has_unit(self, key: str) -> bool:
        """True when the unit's journal file is there and whole; a damaged one is removed (the unit
        is then computed again)."""
        name = self._unit_name(key)
        if not self.folder.is_file(name):
            return False
        try:
            with self.folder.open_input(name) as handle:  # the footer only, not the rows
                pq.read_metadata(handle)
        except (OSError, pa.ArrowException):
            self.folder.delete(name)
            return False
        return True

    def is_empty(self) -> bool:
        """True when no unit has been written (an earlier run failed before its first row)."""
        return not self.folder.names(".journal/units", suffix=".parquet")

    def case_done(self, case: str) -> bool:
        return self.folder.is_file(f".journal/cases/{_hashed(case)}")

    def mark_case_done(self, case: str) -> None:
        """Record that every unit of ``case`` finished, and drop the case's errors of earlier runs."""
        for name in self.folder.names(".journal/errors", prefix=f"{_hashed(case)}-", suffix=".json"):
            self.folder.delete(name)
        self.folder.write_bytes(f".journal/cases/{_hashed(case)}", case.encode("utf-8", "surrogateescape"))

    def write_unit(self, key: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        """Store the rows of one finished unit atomically (``rows`` may be empty) and clear its error.

        ``meta`` (e.g. the number of objects skipped as too small) is kept in the file's metadata.
        """
        table = rows_to_table(rows).replace_schema_metadata({"samia_unit": json.dumps({"key": key, **meta})})
        self.folder.write_bytes(self._unit_name(key), table_bytes(table))
        self.folder.delete(self._error_name(key))

    def record_error(self, key: str, case: str, slice_index: int, path: str, error: BaseException) -> None:
        """Record the failure of one unit (kept until the unit succeeds in a later run)."""
        record = {
            "case": printable(case),
            "slice": slice_index,
            "path": printable(str(path)),
            "error": type(error).__name__,
            "message": printable(" ".join(str(error).split()) or type(error).__name__),
        }
        self.folder.write_bytes(self._error_name(key), json.dumps(record).encode())

    def replace_listing_errors(self, errors: list[tuple[str, str, BaseException]]) -> None:
        """Replace every error of the dataset listing (slice :data:`LISTING`) of earlier runs with
        ``errors`` (``(case, path, error)``): a problem fixed since (a mask added) leaves no stale row."""
        for name in self.folder.names(".journal/errors", suffix=".json"):
            if json.loads(self.folder.read_bytes(name)).get("slice") == LISTING:
                self.folder.delete(name)
        for case, path, error in errors:
            self.record_error(unit_key(case, LISTING), case, LISTING, path, error)

    def record_warnings(self, case: str, records: list[dict[str, Any]]) -> None:
        """Replace the warnings of ``case`` with ``records`` (rows of :data:`WARNING_COLUMNS`)."""
        name = f".journal/warnings/{_hashed(case)}.json"
        if records:
            self.folder.write_bytes(name, json.dumps(records).encode())
        else:
            self.folder.delete(name)

    def _records(self, folder: str) -> Iterator[Any]:
        for name in self.folder.names(folder, suffix=".json"):
            yield json.loads(self.folder.read_bytes(name))

    def warnings(self) -> pd.DataFrame:
        records = [record for listed in self._records(".journal/warnings") for record in listed]
        frame = pd.DataFrame(records, columns=list(WARNING_COLUMNS))
        return frame.sort_values(["case", "slice"], kind="stable").reset_index(drop=True)

    def unit_tables(self) -> Iterable[tuple[pa.Table, dict[str, Any]]]:
        for name in self.folder.names(".journal/units", suffix=".parquet"):
            with self.folder.open_input(name) as handle:
                table = pq.read_table(handle)
            meta = json.loads((table.schema.metadata or {}).get(b"samia_unit", b"{}"))
            yield table, meta

    def errors(self) -> pd.DataFrame:
        frame = pd.DataFrame(list(self._records(".journal/errors")), columns=list(ERROR_COLUMNS))
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
            tables.append(conform(table.replace_schema_metadata(None)))
        combined = pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()
        results = combined.to_pandas().sort_values(sort_by, kind="stable").reset_index(drop=True)
        table = pa.Table.from_pandas(results, schema=RESULT_SCHEMA, preserve_index=False)
        self.folder.write_bytes("results.parquet", table_bytes(table))
        self.folder.write_bytes("errors.csv", self.errors().to_csv(index=False).encode())
        self.folder.write_bytes("warnings.csv", self.warnings().to_csv(index=False).encode())
        return results, pd.DataFrame(metas)


@contextmanager
def folder_lock(folder: RunFolder) -> Iterator[None]:
    """Hold :class:`FolderLock` on a local folder; a folder behind a URI has no lock (one run a
    folder is then the user's to keep)."""
    if folder.local is None:
        yield
        return
    with FolderLock(folder.local):
        yield
