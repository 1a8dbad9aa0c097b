"""Segment one image or volume from prompts: the use case behind ``samia segment``, for Python.

:func:`segment` takes an image (a path, an :class:`~samia.types.Image2D` / :class:`~samia.types.Volume`,
or an array with its spacing), 2D prompts (:class:`~samia.types.Prompt`, on an image or on one
slice of a volume) or volume prompts (:class:`~samia.volume.VolumePrompt`: a 3D box, or key slices
propagated through the volume), and a model (a registry name, :class:`~samia.models.ModelSettings`, a
loaded model, or a predictor, so
a loop over images never reloads weights). It returns a :class:`Segmentation`: the masks on the
image's grid, with geometry, probabilities (2D), the model's IoU estimates, and the label map.

Example (a tiny random-weight model, so the mask itself means nothing)::

    >>> import numpy as np
    >>> import samia
    >>> image = np.zeros((64, 64), np.float32)
    >>> image[20:40, 20:40] = 1.0
    >>> result = samia.segment(image, samia.Prompt(box=np.array([18, 18, 42, 42])), model="tiny_sam", spacing=(0.5, 0.5))
    >>> result.masks.shape, result.grid.spacing
    ((1, 64, 64), (0.5, 0.5))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samia.data.settings import CaseSettings
from samia.errors import ConfigurationError
from samia.models.interface import Segmenter
from samia.models.settings import ModelSettings
from samia.predictor import Prediction, SamiaPredictor
from samia.transforms import IntensityPreset, default_preset, get_preset, preset_for, to_rgb_uint8
from samia.types import Image2D, Prompt, Volume, float_pair, float_triple
from samia.volume import PropagationSettings, VolumePrompt, VolumeSegmentation
from samia.volume.memory import MemorySettings

ModelLike = str | ModelSettings | Segmenter | SamiaPredictor
"""A registry name (built with its bundled weights on the CPU), a loaded model, or a predictor."""

ImageLike = str | Path | Image2D | Volume | np.ndarray
"""A file (or DICOM folder), a read image, or an array: ``(H, W)`` / ``(H, W, 3)`` 2D, ``(Z, Y, X)`` 3D."""


@dataclass(frozen=True)
class Segmentation:
    """The answer of :func:`segment`: one mask per prompt, on one grid.

    Attributes:
        masks: ``(N, H, W)`` bool on a 2D grid, or ``(N, Z, Y, X)`` on a volume's.
        probabilities: ``(N, H, W)`` float32 in [0, 1] (the model's sigmoid, 2D answers); None for a
            volume answer.
        predicted_iou: ``(N,)`` float32: the model's own IoU estimate (a volume: its mean over the
            slices the object reached).
        prompts: the prompts as used (2D prompts fitted to the image: a box clipped to it says so in
            its ``meta``), in the order of ``masks``.
        grid: the image whose grid ``masks`` lie on (spacing in mm, origin, direction), for writing.
        preset: the intensity window the model saw.
        propagation: a volume answer's record of its run (each object's slices, the encoder and
            decoder calls); None for a 2D answer.
    """

    masks: np.ndarray
    probabilities: np.ndarray | None
    predicted_iou: np.ndarray
    prompts: tuple[Prompt | VolumePrompt, ...]
    grid: Image2D | Volume
    preset: IntensityPreset
    propagation: VolumeSegmentation | None = None

    def label_map(self) -> np.ndarray:
        """Label ``k + 1`` where object ``k``'s mask is (uint8; uint16 beyond 255 objects). Where
        masks overlap: the most probable object when probabilities are known, else the later one
        (as the CVPR 2024 baseline writes its ``segs``)."""
        count = len(self.masks)
        labels = np.zeros(self.masks.shape[1:], dtype=np.uint16 if count > 255 else np.uint8)
        if self.probabilities is None:
            for number, mask in enumerate(self.masks, start=1):
                labels[mask] = number
            return labels
        scores = np.where(self.masks, self.probabilities, -1.0)
        labels[...] = np.argmax(scores, axis=0) + 1
        labels[~self.masks.any(axis=0)] = 0
        return labels

    def placed(self, array: np.ndarray, volume: Volume, index: int, axis: int = 0) -> np.ndarray:
        """A 2D answer's ``(..., H, W)`` array put at slice ``index`` along ``axis`` of an empty
        array on ``volume``'s grid (``(..., Z, Y, X)``, zeros elsewhere)."""
        full = np.zeros((*array.shape[:-2], *volume.shape), dtype=array.dtype)
        where: list[Any] = [slice(None)] * full.ndim
        where[full.ndim - 3 + axis] = index
        full[tuple(where)] = array
        return full


def as_predictor(model: ModelLike, decode_batch: int = 32) -> SamiaPredictor:
    """``model`` as a predictor: a registry name is built (bundled weights, CPU, torch), model
    settings are loaded as they say; a loaded model is wrapped; a predictor is used as it is (its
    embedding cache with it)."""
    if isinstance(model, SamiaPredictor):
        return model
    if isinstance(model, str):
        model = ModelSettings(model)
    if isinstance(model, ModelSettings):
        return SamiaPredictor(model.load(), max_batch=decode_batch)
    return SamiaPredictor(model, max_batch=decode_batch)


def as_image(image: ImageLike, spacing: Sequence[float] | None = None, modality: str | None = None) -> Image2D | Volume:
    """``image`` read (a path), as it is (an Image2D / Volume), or wrapped (an array, whose
    ``spacing`` in mm, ``(y, x)`` or ``(z, y, x)``, must be given: never invented).

    Raises:
        ConfigurationError: an array without its spacing, or of a shape that is no image.
        InputError: a file that cannot be read (from :func:`samia.io.read_image`).
    """
    if isinstance(image, (Image2D, Volume)):
        return image
    if isinstance(image, (str, Path)):
        from samia.io import read_image

        return read_image(image, modality)
    array = np.asarray(image)
    is_2d = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)
    if spacing is None:
        raise ConfigurationError(
            f"an array of shape {array.shape} needs its spacing in mm (spacing=(y, x) or (z, y, x)): samia never assumes one"
        )
    if is_2d and len(spacing) == 2:
        return Image2D(array, float_pair(spacing), modality or "other", spacing_source="user")
    if array.ndim == 3 and len(spacing) == 3:
        return Volume(array, float_triple(spacing), modality=modality or "other")
    raise ConfigurationError(
        f"an array of shape {array.shape} with spacing {tuple(spacing)}: give (H, W) or (H, W, 3) with (y, x), "
        "or (Z, Y, X) with (z, y, x)"
    )


def segment(
    image: ImageLike,
    prompts: Prompt | VolumePrompt | Sequence[Prompt] | Sequence[VolumePrompt],
    model: ModelLike = "litemedsam",
    *,
    spacing: Sequence[float] | None = None,
    reading: CaseSettings | None = None,
    slice_index: int | None = None,
    multimask: bool | None = None,
    propagation: PropagationSettings | MemorySettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    speed: str = "default",
) -> Segmentation:
    """Segment one object per prompt.

    Args:
        image: see :data:`ImageLike`.
        prompts: 2D prompts (on the image, or on ``slice_index`` of a volume), or volume prompts
            (the whole volume: a 3D box, or key slices propagated).
        model: see :data:`ModelLike`.
        spacing: an array's pixel or voxel size in mm (required for arrays, ignored otherwise).
        reading: how the image is read, as in a run: its ``modality`` when the image does not say
            (it picks the default preset), the intensity ``preset`` (a name; the modality's default
            when None), and the ``axis`` of a volume along which slices are taken.
        slice_index: the slice of a volume (along ``reading.axis``) that 2D prompts are on.
        multimask: pick among SAM's three candidates by predicted IoU; None: only for a lone point.
        propagation: how volume prompts travel through the volume: :class:`PropagationSettings`
            (samia's slice engine) or :class:`~samia.volume.memory.MemorySettings` (SAM 2's memory
            bank); None = memory for SAM 2 family models, else the slice engine's default for the
            prompt kind (:func:`samia.volume.memory.volume_settings`).
        progress: volume prompts: called after each slice with ``(slices done, slices planned)``
            (:func:`samia.volume.segment_volume`).
        speed: volume prompts: ``accurate``, ``default`` or ``fast``
            (:data:`samia.volume.propagation.SPEEDS`: how many slices the slice engine decodes;
            memory tracking visits every slice, so only ``default``/``accurate``).

    Raises:
        ConfigurationError: prompts of the wrong kind for the image, a prompt that cannot lie
            on the image (one line naming the prompt), or an unknown speed.
        InvalidImageError: a slice or axis the volume does not have (from ``Volume.slice``).
    """
    reading = reading or CaseSettings()
    loaded = as_image(image, spacing, reading.modality)
    listed = list(prompts) if isinstance(prompts, Sequence) else [prompts]
    if not listed:
        raise ConfigurationError("no prompt given: nothing to segment")
    window = None if reading.preset is None else get_preset(reading.preset)
    axis = reading.axis
    predictor = as_predictor(model)
    volume_prompts = [p for p in listed if isinstance(p, VolumePrompt)]
    plane_prompts = [p for p in listed if isinstance(p, Prompt)]
    if len(volume_prompts) == len(listed):
        if not isinstance(loaded, Volume):
            raise ConfigurationError(f"{_name(loaded)} is a 2D image {loaded.shape}: volume prompts need a volume")
        return _segment_volume(
            predictor, loaded, volume_prompts, window or preset_for(loaded), axis, propagation, progress, speed
        )
    if len(plane_prompts) != len(listed):
        raise ConfigurationError("give either 2D prompts (Prompt) or volume prompts (VolumePrompt), not both")
    plane = _plane(loaded, slice_index, axis)
    return _segment_plane(
        predictor, plane, plane_prompts, window or default_preset(plane.modality, plane.is_rgb), multimask
    )


def _name(image: Image2D | Volume) -> str:
    return image.path or "the image"


def _plane(image: Image2D | Volume, slice_index: int | None, axis: int) -> Image2D:
    if isinstance(image, Image2D):
        if slice_index is not None:
            raise ConfigurationError(f"{_name(image)} is a 2D image: a slice does not apply")
        return image
    if slice_index is None:
        raise ConfigurationError(f"{_name(image)} is a volume {image.shape}: choose a slice for 2D prompts")
    return image.slice(slice_index, axis)  # refuses an axis or slice the volume does not have, naming it


def _segment_plane(
    predictor: SamiaPredictor, plane: Image2D, prompts: list[Prompt], window: IntensityPreset, multimask: bool | None
) -> Segmentation:
    fitted = []
    for number, prompt in enumerate(prompts, start=1):
        try:
            fitted.append(prompt.fitted_to(plane.shape))
        except ValueError as error:
            which = f"prompt {number}: " if len(prompts) > 1 else ""
            raise ConfigurationError(f"{_name(plane)}: impossible prompt: {which}{error}") from None
    predictor.set_image(to_rgb_uint8(plane, window))
    chosen: list[Prediction] = []
    for prompt, both in zip(fitted, predictor.predict_batch_all_outputs(fitted)):
        lone_point = prompt.box is None and prompt.points is not None and len(prompt.points) == 1
        answer = both.select(slice(1, None) if (lone_point if multimask is None else multimask) else slice(0, 1))
        chosen.append(answer.select(slice(answer.best_index, answer.best_index + 1)))
    return Segmentation(
        masks=np.stack([p.masks[0] for p in chosen]),
        probabilities=np.stack([p.probabilities()[0] for p in chosen]).astype(np.float32),
        predicted_iou=np.array([p.iou_predictions[0] for p in chosen], dtype=np.float32),
        prompts=tuple(fitted),
        grid=plane,
        preset=window,
    )


def _segment_volume(
    predictor: SamiaPredictor,
    volume: Volume,
    prompts: list[VolumePrompt],
    window: IntensityPreset,
    axis: int,
    propagation: PropagationSettings | MemorySettings | None,
    progress: Callable[[int, int], None] | None,
    speed: str,
) -> Segmentation:
    from samia.volume import VolumeSession, segment_volume
    from samia.volume.memory import segment_volume_with_memory, volume_settings

    settings = propagation or volume_settings(predictor.model, "auto", prompts[0].box3d is not None)
    with VolumeSession(predictor, volume, window, axis) as session:
        if isinstance(settings, MemorySettings):
            if speed not in ("default", "accurate"):
                raise ConfigurationError(
                    f"speed {speed!r} samples slices of the slice engine; memory tracking visits every slice"
                )
            result = segment_volume_with_memory(session, prompts, settings, progress)
        else:
            result = segment_volume(session, prompts, settings, progress, speed)
    return Segmentation(
        masks=np.stack([obj.mask for obj in result.objects]),
        probabilities=None,
        predicted_iou=np.array([_mean_iou(obj) for obj in result.objects], dtype=np.float32),
        prompts=tuple(prompts),
        grid=volume,
        preset=window,
        propagation=result,
    )


def _mean_iou(obj: Any) -> float:
    values = [step.predicted_iou for step in obj.steps if step.area > 0]
    return float(np.mean(values)) if values else float("nan")
