"""Embedding cache: encode an image once per model, reuse it across prompts, runs and training.

Keys combine everything that changes an embedding: model name, weights hash, input size,
normalization, input pipeline (how the image is resized), backend and precision, and a hash of the
exact RGB pixels the model saw (so the intensity preset is part of the key through the pixels).
Embeddings are ``(1, C, E, E)`` float32 numpy arrays whatever the backend; an on-disk entry
(``<key>.npz``) stores its key and is refused when it differs or cannot be read.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from samia.files import atomic_write
from samia.models.interface import Segmenter


def embedding_key(model: Segmenter, image_rgb: np.ndarray) -> str:
    """Hex key of the embedding of ``image_rgb`` (``(H, W, 3)`` uint8) under ``model``."""
    digest = hashlib.sha256()
    signature = (
        f"{model.name}|{model.weights_sha256}|{model.input_size}|{model.normalization}|{model.input_pipeline}"
        f"|{model.backend}|{model.precision}|{image_rgb.shape}"
    )
    digest.update(signature.encode())
    digest.update(np.ascontiguousarray(image_rgb).tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """A memory LRU of image embeddings with an optional on-disk layer, safe to share between threads
    (the annotation server's background encoder fills the one its sessions read).

    Args:
        max_items: embeddings kept in memory (LiteMedSAM: 4 MiB each; SAM: 4 MiB each).
        directory: if given, embeddings are also written there as ``<key>.npz`` (atomic writes) and
            read back in later runs.
        max_bytes: if given, the least recently used embeddings are also dropped while those kept
            in memory take more bytes than this (a long-running server's bound).
    """

    def __init__(self, max_items: int = 32, directory: str | Path | None = None, max_bytes: int | None = None) -> None:
        if max_items < 0:
            raise ValueError("max_items must be >= 0")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_items, self.max_bytes = max_items, max_bytes
        self.directory = None if directory is None else Path(directory)
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        """The cached ``(1, C, E, E)`` float32 CPU embedding for ``key``, or None."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                self.hits += 1
                return self._memory[key]
        embedding = self._read_disk(key)
        if embedding is None:
            self.misses += 1
            return None
        self.hits += 1
        self._remember(key, embedding)
        return embedding

    def put(self, key: str, embedding: np.ndarray) -> None:
        """Keep ``embedding`` (``(1, C, E, E)``, stored as float32) under ``key``."""
        embedding = np.asarray(embedding, dtype=np.float32)
        self._remember(key, embedding)
        if self.directory is not None:
            self._write_disk(key, embedding)

    def clear(self) -> None:
        with self._lock:
            self._memory.clear()
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._memory)

    def _remember(self, key: str, embedding: np.ndarray) -> None:
        if self.max_items == 0:
            return
        with self._lock:
            previous = self._memory.pop(key, None)
            self.bytes -= 0 if previous is None else previous.nbytes
            self._memory[key] = embedding
            self.bytes += embedding.nbytes
            limit = self.max_bytes if self.max_bytes is not None else self.bytes
            while len(self._memory) > self.max_items or self.bytes > limit:
                self.bytes -= self._memory.popitem(last=False)[1].nbytes

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}.npz"

    def _read_disk(self, key: str) -> np.ndarray | None:
        if self.directory is None or not self._path(key).is_file():
            return None
        try:
            with np.load(self._path(key), allow_pickle=False) as stored:
                if str(stored["key"]) != key:
                    return None
                return np.asarray(stored["embedding"], dtype=np.float32)
        except Exception:  # a damaged cache entry is recomputed, never trusted
            return None

    def _write_disk(self, key: str, embedding: np.ndarray) -> None:
        def write(temporary: Path) -> None:
            with temporary.open("wb") as handle:
                np.savez(handle, key=np.array(key), embedding=embedding)

        atomic_write(self._path(key), write)
