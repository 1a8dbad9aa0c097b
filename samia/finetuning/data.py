"""Training data: the split by case, content hashes of the data, and the 2D training images.

A *training image* is one 2D image (a 2D case, or one slice of a volume) with its objects, made
exactly as ``samia evaluate`` makes its items (same slicing, ``min_area``, intensity preset), so a
model is trained on what it is later evaluated on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from samia.data import Case, iter_slice_items
from samia.embeddings import EmbeddingCache, embedding_key
from samia.errors import ConfigurationError, DatasetLayoutError
from samia.finetuning.config import FinetuneConfig
from samia.models import PromptableSegmenter, file_sha256
from samia.predictor import SamiaPredictor
from samia.transforms import InputGeometry, default_preset, get_preset, input_geometry, to_rgb_uint8


@dataclass(frozen=True, eq=False)
class TrainingImage:
    """One 2D image with its objects, ready for training steps.

    Attributes:
        case_id: the case it comes from.
        slice_index: index along the slicing axis for a volume; None for a 2D case.
        geometry: the image's geometry for the model input.
        masks: ``(K, H, W)`` bool, one ground-truth mask per object, on the original grid.
        resized: ``(h, w, 3)`` uint8 model-input image (methods that run the encoder); None when
            the embedding is cached.
        embedding_key: key of the image's embedding in the run's embedding cache (``decoder``
            method); None otherwise.
        identities: per object, ``(label, component)`` (component -1 for a whole label value),
            the identity ``samia evaluate`` seeds the object's prompts with.
    """

    case_id: str
    slice_index: int | None
    geometry: InputGeometry
    masks: np.ndarray
    resized: np.ndarray | None
    embedding_key: str | None
    identities: tuple[tuple[int, int], ...]

    @property
    def n_objects(self) -> int:
        return int(self.masks.shape[0])


class _Identified(Protocol):
    @property
    def case_id(self) -> str: ...


CaseLike = TypeVar("CaseLike", bound=_Identified)


def split_cases(
    cases: Sequence[CaseLike], val_fraction: float, seed: int, source: str | Path
) -> tuple[list[CaseLike], list[CaseLike]]:
    """Hold out ``round(val_fraction * n)`` cases (at least 1, at most ``n - 1``) for validation.

    Every slice of a case goes to the same side, so no image leaks from training into validation.
    The split is a seeded permutation of the cases (sorted by ``case_id``): one seed, one split.

    Raises:
        DatasetLayoutError: fewer than 2 cases (the message names ``source`` and suggests ``--val``).
    """
    ordered = sorted(cases, key=lambda c: c.case_id)
    if len(ordered) < 2:
        raise DatasetLayoutError(
            source,
            f"too few cases to split into training and validation ({len(ordered)} case); "
            "give a validation dataset with --val or add cases",
        )
    n_val = min(len(ordered) - 1, max(1, round(val_fraction * len(ordered))))
    held_out = set(np.random.default_rng(seed).permutation(len(ordered))[:n_val].tolist())
    train = [c for i, c in enumerate(ordered) if i not in held_out]
    val = [c for i, c in enumerate(ordered) if i in held_out]
    return train, val


def _path_sha256(path: Path) -> str:
    """SHA-256 of a file, or of every file under a folder (a DICOM series) with its relative name."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}:{file_sha256(member)}".encode())
    return digest.hexdigest()


def case_digests(cases: Sequence[Case]) -> dict[str, str]:
    """``case_id -> SHA-256 of the image's bytes``: identifies a case's pixels wherever the file lies."""
    return {case.case_id: _path_sha256(case.image_path) for case in cases}


def dataset_hash(cases: Sequence[Case], digests: dict[str, str]) -> str:
    """SHA-256 of the cases' ids, image bytes (``digests``) and label-map bytes: changes with any file."""
    records = [
        [c.case_id, digests[c.case_id], _path_sha256(c.label_path)] for c in sorted(cases, key=lambda c: c.case_id)
    ]
    return hashlib.sha256(json.dumps(records).encode()).hexdigest()


def check_no_leakage(train: dict[str, str], val: dict[str, str]) -> None:
    """Refuse a validation set holding an image of the training set (by content, not by name).

    Args:
        train, val: :func:`case_digests` of both sides.

    Raises:
        ConfigurationError: naming the shared cases.
    """
    by_digest = {digest: case for case, digest in train.items()}
    shared = [f"{by_digest[d]} (train) = {case} (val)" for case, d in val.items() if d in by_digest]
    if shared:
        raise ConfigurationError(f"validation images also in the training data: {', '.join(shared[:5])}")


def load_training_images(
    cases: Sequence[Case],
    model: PromptableSegmenter,
    config: FinetuneConfig,
    source: str | Path,
    cache: EmbeddingCache | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> list[TrainingImage]:
    """Read every case once and make its training images (slices with at least one object).

    Args:
        cases: the cases of one side of the split.
        model: the base model (its input size; its encoder when ``cache`` is given).
        config: slicing, ``min_area``, connected components and intensity preset options.
        source: the dataset folder, for error messages.
        cache: when given (``decoder`` method), each image is encoded once with ``model`` into
            ``cache`` (on disk, reused by later runs) and its pixels are not kept; image ``i`` is
            encoded by process ``i % world_size`` only, the others read it from the cache later.
        rank, world_size: this process and the number of processes.

    Raises:
        DatasetLayoutError: no object of at least ``config.reading.min_area`` pixels in any mask (nothing
            to train on); the message names ``source``.
        InputError: a file is missing, unreadable or invalid (training does not skip bad files).
    """
    predictor = None if cache is None else SamiaPredictor(model, cache)
    fixed_preset = None if config.reading.preset is None else get_preset(config.reading.preset)
    images: list[TrainingImage] = []
    for case in cases:
        reading = config.reading
        for item in iter_slice_items(case, reading.axis, reading.minimum_area, reading.connected_components):
            if not item.objects:
                continue
            rgb = to_rgb_uint8(item.image, fixed_preset or default_preset(item.image.modality, item.image.is_rgb))
            geometry = input_geometry(model.input_pipeline, rgb.shape[:2], model.input_size)
            key = resized = None
            if predictor is None:
                resized = geometry.resize_image(rgb)
            else:
                key = embedding_key(model, rgb)
                if len(images) % world_size == rank:
                    predictor.set_image(rgb)
            masks = np.stack([obj.mask for obj in item.objects])
            identities = tuple((int(o.label), -1 if o.component is None else int(o.component)) for o in item.objects)
            images.append(TrainingImage(case.case_id, item.slice_index, geometry, masks, resized, key, identities))
    if not images:
        raise DatasetLayoutError(
            source,
            f"no object of at least {config.reading.min_area} pixels in any mask of its {len(cases)} case(s): "
            "nothing to train on (empty masks only?)",
        )
    return images


def low_res_targets(masks: np.ndarray, geometry: InputGeometry, low_res_size: int) -> torch.Tensor:
    """Ground-truth masks on the model's low-resolution logit grid.

    The masks go through the image's own path into the model: resize to ``geometry.resized_shape``
    (bilinear, antialiased), zero padding to the ``S x S`` input, then area averaging to ``L x L``.

    Args:
        masks: ``(K, H, W)`` bool on the original grid.
        geometry: the image's geometry.
        low_res_size: ``L`` (``PromptableSegmenter.low_res_size``).

    Returns:
        ``(K, 1, L, L)`` float32 in ``[0, 1]``: the fraction of each low-resolution cell covered
        by the object (soft targets; thin structures are not lost to rounding).
    """
    stacked = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None]
    resized = F.interpolate(stacked, geometry.resized_shape, mode="bilinear", align_corners=False, antialias=True)
    side = geometry.input_size
    padded = F.pad(resized, (0, side - resized.shape[-1], 0, side - resized.shape[-2]))
    if side != low_res_size:
        padded = F.interpolate(padded, (low_res_size, low_res_size), mode="area")
    return padded.clamp_(0.0, 1.0)
