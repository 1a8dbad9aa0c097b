"""Where a run's files live: a folder on this machine's disk, or one behind a filesystem URI.

``--out`` is a path (on a local disk, or a shared filesystem every Ray worker mounts at the same
path) or a URI that ``pyarrow.fs.FileSystem.from_uri`` opens: ``s3://bucket/prefix``,
``gs://bucket/prefix``, ``abfs://...``, ``hdfs://...``, ``file:///abs/path``. Every write is
atomic: on a local disk a hidden ``.<name>.<random>.partial`` temporary renamed into place
(``samia.files.atomic_write``); on an object store (``s3``, ``gcs``, ``abfs``) one upload, which
the store shows only once it is complete; on any other filesystem a hidden temporary moved into
place. Names inside a folder are ``/``-separated relative paths.
"""

from __future__ import annotations

import uuid
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.fs as pafs

from samia.errors import ConfigurationError
from samia.files import PARTIAL_PATTERN, atomic_write_bytes, remove_partials

OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
"""pyarrow filesystems whose uploads appear whole or not at all (no rename needed)."""


def is_uri(location: str | Path) -> bool:
    """True for ``scheme://...`` (a filesystem URI), False for a path."""
    return "://" in str(location)


def _listed(found: list[str], folder: str, prefix: str, suffix: str) -> list[str]:
    """``folder/name`` of the visible (not hidden, so not ``.partial``) names with ``prefix`` and ``suffix``."""
    return sorted(
        f"{folder}/{name}"
        for name in found
        if not name.startswith(".") and name.startswith(prefix) and name.endswith(suffix)
    )


class LocalFolder:
    """A results folder on this machine's disk (or a mounted shared filesystem)."""

    def __init__(self, path: str | Path) -> None:
        self.location = str(path)
        self.root = Path(path)
        self.local: Path | None = self.root
        """The folder on this disk (None for a folder behind a URI; see :class:`FilesystemFolder`)."""

    def where(self, name: str = "") -> str:
        """How messages name the file ``name`` (the folder itself when empty)."""
        return str(self.root / name) if name else self.location

    def make(self, name: str = "") -> None:
        """Create the folder ``name`` (and its parents)."""
        (self.root / name).mkdir(parents=True, exist_ok=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name`` atomically (whole or absent, never half-written)."""
        atomic_write_bytes(self.root / name, data)

    def read_bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def open_input(self, name: str) -> pa.NativeFile:
        """``name`` opened for random access (a Parquet reader then reads only what it needs)."""
        return pa.OSFile(str(self.root / name))

    def is_file(self, name: str) -> bool:
        return (self.root / name).is_file()

    def delete(self, name: str) -> None:
        """Remove the file ``name`` if it is there."""
        (self.root / name).unlink(missing_ok=True)

    def names(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        """The visible files directly in ``folder`` whose names start with ``prefix`` and end with
        ``suffix``, as sorted relative names (hidden ``.partial`` temporaries are left out)."""
        directory = self.root / folder
        found = [p.name for p in directory.iterdir() if p.is_file()] if directory.is_dir() else []
        return _listed(found, folder, prefix, suffix)

    def remove_partials(self, folder: str) -> int:
        """Delete the temporaries a killed writer left in ``folder``; returns how many."""
        return remove_partials(self.root / folder)


class FilesystemFolder:
    """A results folder behind a ``pyarrow.fs`` URI.

    Raises:
        ConfigurationError: a URI pyarrow cannot open (unknown scheme, no credentials, no bucket).
    """

    def __init__(self, uri: str) -> None:
        self.location = uri
        self.local: Path | None = None
        try:
            self._fs, root = pafs.FileSystem.from_uri(uri)
        except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... with a readable message
            raise ConfigurationError(f"--out {uri}: cannot open it ({error})") from None
        self._root = root.rstrip("/")

    def __reduce__(self) -> tuple[type[FilesystemFolder], tuple[str]]:
        """Pickled as its URI: a Ray worker opens the filesystem itself, with its node's credentials."""
        return (FilesystemFolder, (self.location,))

    def _path(self, name: str) -> str:
        return f"{self._root}/{name}" if name else self._root

    def where(self, name: str = "") -> str:
        return f"{self.location.rstrip('/')}/{name}" if name else self.location

    def make(self, name: str = "") -> None:
        self._fs.create_dir(self._path(name), recursive=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        target = PurePosixPath(self._path(name))
        self._fs.create_dir(str(target.parent), recursive=True)
        if self._fs.type_name in OBJECT_STORES:
            with self._fs.open_output_stream(str(target)) as stream:
                stream.write(data)
            return
        temporary = str(target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial"))
        try:
            with self._fs.open_output_stream(temporary) as stream:
                stream.write(data)
            self._fs.move(temporary, str(target))
        except BaseException:
            if self._exists(temporary):
                self._fs.delete_file(temporary)
            raise

    def _exists(self, path: str) -> bool:
        return self._fs.get_file_info(path).type == pafs.FileType.File

    def read_bytes(self, name: str) -> bytes:
        with self._fs.open_input_stream(self._path(name)) as stream:
            return stream.read()

    def open_input(self, name: str) -> pa.NativeFile:
        return self._fs.open_input_file(self._path(name))

    def is_file(self, name: str) -> bool:
        return self._exists(self._path(name))

    def delete(self, name: str) -> None:
        if self._exists(self._path(name)):
            self._fs.delete_file(self._path(name))

    def _files(self, folder: str) -> list[str]:
        selector = pafs.FileSelector(self._path(folder), allow_not_found=True)
        return [info.path for info in self._fs.get_file_info(selector) if info.type == pafs.FileType.File]

    def names(self, folder: str, prefix: str = "", suffix: str = "") -> list[str]:
        return _listed([PurePosixPath(path).name for path in self._files(folder)], folder, prefix, suffix)

    def remove_partials(self, folder: str) -> int:
        stale = [path for path in self._files(folder) if fnmatch(PurePosixPath(path).name, PARTIAL_PATTERN)]
        for path in stale:
            self._fs.delete_file(path)
        return len(stale)


RunFolder = LocalFolder | FilesystemFolder


def open_folder(location: str | Path) -> RunFolder:
    """The results folder at ``location``: a :class:`FilesystemFolder` for a URI, else a :class:`LocalFolder`."""
    return FilesystemFolder(str(location)) if is_uri(location) else LocalFolder(location)
