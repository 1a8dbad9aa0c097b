"""One volume under one model: its slices as the model sees them, each encoded at most once.

A :class:`VolumeSession` maps the whole volume to 0..255 once (the preset's range taken over the
volume), and puts a slice in front of the predictor on request. The first time a slice is needed it
is encoded (through the predictor's cache, so an embedding already cached costs nothing); when it
will be needed again (the other sweep direction of one call, or, with ``keep_all``, another
strategy or a correction click later) its embedding is kept on disk for the session and read back.
Memory holds the predictor's small LRU only, so it does not grow with the number of slices.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from samia.embeddings import EmbeddingCache, embedding_key
from samia.predictor import SamiaPredictor
from samia.transforms import IntensityPreset, gray_to_rgb, volume_to_uint8
from samia.types import Volume, check_slice_index


class VolumeSession:
    """Slices of ``volume`` along ``axis`` for ``predictor``; use as a context manager (the kept
    embeddings are deleted on exit unless the predictor's cache has a folder of its own).

    Args:
        predictor: the predictor (its model and cache).
        volume: the ``(Z, Y, X)`` volume.
        preset: the intensity preset, applied to the whole volume.
        axis: the slicing axis (0 = z).
        keep_all: keep every encoded slice (several calls on one volume: evaluation strategies,
            correction clicks); False keeps only those a call says it needs again.

    Attributes:
        slices_encoded: encoder calls made for this volume.
        decodings: prompts decoded on its slices (counted by the engine).
    """

    def __init__(
        self, predictor: SamiaPredictor, volume: Volume, preset: IntensityPreset, axis: int = 0, keep_all: bool = False
    ) -> None:
        check_slice_index(volume.path or "<volume>", volume.shape, 0, axis)
        self.predictor = predictor
        self.volume = volume
        self.axis = axis
        self.preset = preset
        self.keep_all = keep_all
        self.gray = np.moveaxis(volume_to_uint8(volume, preset), axis, 0)  # slices first (a view)
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if predictor.cache.directory is not None:
            self._kept = predictor.cache
        else:
            self._temporary = tempfile.TemporaryDirectory(prefix="samia-slices-")
            self._kept = EmbeddingCache(max_items=0, directory=Path(self._temporary.name))
        self._keys: dict[int, str] = {}
        self.slices_encoded = 0
        self.decodings = 0

    @property
    def depth(self) -> int:
        """Slices along the axis."""
        return int(self.gray.shape[0])

    @property
    def plane_shape(self) -> tuple[int, int]:
        """``(H, W)`` of a slice."""
        return int(self.gray.shape[1]), int(self.gray.shape[2])

    @property
    def kept_slices(self) -> list[int]:
        """The slices whose embeddings the session holds on disk, sorted."""
        return sorted(self._keys)

    def rgb(self, index: int) -> np.ndarray:
        """``(H, W, 3)`` uint8: slice ``index`` as the model sees it."""
        return gray_to_rgb(self.gray[index])

    def use(self, index: int, again: bool = False) -> None:
        """Put slice ``index`` in front of the predictor; ``again``: it will be asked for again (its
        embedding is then kept, as every slice's is with ``keep_all``)."""
        key = self._keys.get(index)
        if key is not None:
            embedding = self._kept.get(key)
            if embedding is not None:
                self.predictor.set_embedding(embedding, self.plane_shape)
                return
        rgb = self.rgb(index)
        before = self.predictor.encoder_calls
        self.predictor.set_image(rgb)
        self.slices_encoded += self.predictor.encoder_calls - before
        if not (again or self.keep_all):
            return
        key = embedding_key(self.predictor.model, rgb)
        if self._kept is not self.predictor.cache:
            self._kept.put(key, self.predictor.image_embedding)
        self._keys[index] = key

    def close(self) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> VolumeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
