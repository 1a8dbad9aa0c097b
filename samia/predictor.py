"""The stateful predictor: ``set_image`` once, ``predict`` many prompts against that embedding.

Works in the original image's pixel coordinates (points ``(x, y)``, boxes XYXY inclusive) and
returns masks on the original grid, as segment-anything's ``SamPredictor`` does; every prompt of a
batch with the same structure goes through the mask decoder in one call. It holds the model
through :class:`samia.models.interface.Segmenter` only (numpy in, numpy out), so it runs a torch model
and an exported one alike and imports no torch itself.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from samia.embeddings import EmbeddingCache, embedding_key
from samia.errors import ModelOutputError
from samia.models.interface import Segmenter
from samia.transforms.geometry import InputGeometry, input_geometry
from samia.types import Prompt, present


@dataclass(frozen=True)
class Prediction:
    """The model's answer to one prompt.

    Attributes:
        masks: ``(M, H, W)`` bool on the original grid (``M`` = 3 with multimask output, else 1).
        iou_predictions: ``(M,)`` float32, the model's own estimate of each mask's IoU.
        low_res_logits: ``(M, L, L)`` float32 logits on the model's low-resolution grid; pass one
            back as ``Prompt.mask_input`` for iterative refinement.
        geometry: how the low-resolution grid maps onto the image (for :meth:`logits` and
            :meth:`probabilities`); None for masks that did not come from the decoder.
    """

    masks: np.ndarray
    iou_predictions: np.ndarray
    low_res_logits: np.ndarray
    geometry: InputGeometry | None = None

    def select(self, outputs: slice) -> Prediction:
        """The prediction restricted to some of its candidate masks."""
        return Prediction(
            self.masks[outputs], self.iou_predictions[outputs], self.low_res_logits[outputs], self.geometry
        )

    def logits(self) -> np.ndarray:
        """``(M, H, W)`` float32 logits on the original grid; ``masks`` is ``logits() > 0``.

        Raises:
            ValueError: the prediction has no geometry (it did not come from the decoder).
        """
        if self.geometry is None:
            raise ValueError("this prediction has no decoder logits (no geometry); only predictor outputs have them")
        return self.geometry.logits_to_original(self.low_res_logits)

    def probabilities(self) -> np.ndarray:
        """``(M, H, W)`` float32 sigmoid probabilities on the original grid; ``masks`` is ``> 0.5`` of it
        (for the ``medsam`` pipeline: the probabilities interpolated as MedSAM's script does)."""
        return (1.0 / (1.0 + np.exp(-self.logits().astype(np.float64)))).astype(np.float32)

    @property
    def best_index(self) -> int:
        """Index of the candidate with the highest predicted IoU (what a user of SAM gets)."""
        return int(np.argmax(self.iou_predictions))


class SamiaPredictor:
    """Holds one image's embedding for a :class:`PromptableSegmenter`.

    Args:
        model: the model (a ``PromptableSegmenter`` on any device, or an exported one).
        cache: embedding cache shared across images and runs; a private 1-entry cache if None.
        max_batch: prompts decoded per decoder call at most; larger batches are split, so memory
            is bounded by ``max_batch`` x 4 outputs x the image size, whatever the number of prompts.
            Within that bound the batch size is the one measured fastest per prompt for this model
            on this machine (:mod:`samia.models.decode_batch`, measured once when several prompts
            first meet one image).
    """

    def __init__(self, model: Segmenter, cache: EmbeddingCache | None = None, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model.eval()
        self.cache = cache if cache is not None else EmbeddingCache(max_items=1)
        self.max_batch = int(max_batch)
        self._decode_batch: int | None = None
        self.encoder_calls = 0
        self.encode_seconds = 0.0
        """Wall seconds spent in the model's encoder so far (cache hits cost none)."""
        self.decode_seconds = 0.0
        """Wall seconds spent decoding prompts so far, masks mapped back to the image included."""
        self.reset()

    @property
    def decode_batch(self) -> int:
        """Prompts per decoder call: the measured fastest, at most ``max_batch``."""
        if self._decode_batch is None:
            from samia.models.decode_batch import measured_decode_batch

            self._decode_batch = measured_decode_batch(self.model, self.max_batch)
        return self._decode_batch

    def reset(self) -> None:
        """Forget the current image."""
        self._embedding: np.ndarray | None = None
        self._geometry: InputGeometry | None = None

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, E, E)``: the shape of the model's image embedding."""
        return self.model.embedding_shape

    @property
    def image_embedding(self) -> np.ndarray:
        """``(1, C, E, E)`` float32 embedding of the current image."""
        if self._embedding is None:
            raise RuntimeError("call set_image() before predict()")
        return self._embedding

    @property
    def geometry(self) -> InputGeometry:
        """The current image's geometry under the model's input pipeline."""
        if self._geometry is None:
            raise RuntimeError("call set_image() before predict()")
        return self._geometry

    def set_image(self, image_rgb: np.ndarray) -> None:
        """Compute (or fetch from the cache) the embedding of ``image_rgb``.

        Args:
            image_rgb: ``(H, W, 3)`` uint8 RGB image (see ``samia.transforms.to_rgb_uint8``).
        """
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image_rgb.shape} {image_rgb.dtype}")
        self._geometry = input_geometry(self.model.input_pipeline, image_rgb.shape[:2], self.model.input_size)
        key = embedding_key(self.model, image_rgb)
        embedding = self.cache.get(key)
        if embedding is not None and tuple(embedding.shape) != self.embedding_shape:
            embedding = None  # a damaged or foreign cache entry is recomputed, never used
        if embedding is None:
            started = time.perf_counter()
            embedding = self._finite(self.model.embed(self._geometry.resize_image(image_rgb)), "image embedding")
            self.encode_seconds += time.perf_counter() - started
            self.encoder_calls += 1
            self.cache.put(key, embedding)
        self._embedding = np.asarray(embedding, dtype=np.float32)

    def set_embedding(self, embedding: np.ndarray, original_shape: tuple[int, int]) -> None:
        """Use a precomputed ``(1, C, E, E)`` embedding (e.g. kept on disk by the volume engine) of an
        image of ``original_shape`` ``(H, W)``, as if :meth:`set_image` had computed it."""
        if tuple(embedding.shape) != self.embedding_shape:
            raise ValueError(f"embedding of shape {tuple(embedding.shape)} is not {self.embedding_shape}")
        self._geometry = input_geometry(self.model.input_pipeline, original_shape, self.model.input_size)
        self._embedding = np.asarray(embedding, dtype=np.float32)

    def predict(self, prompt: Prompt, multimask_output: bool = True) -> Prediction:
        """Segment one prompt on the current image (see :meth:`predict_batch`)."""
        return self.predict_batch([prompt], multimask_output)[0]

    def predict_batch(
        self, prompts: Sequence[Prompt], multimask_output: bool = True, fit: bool = True
    ) -> list[Prediction]:
        """Segment many prompts on the current image; one decoder call per prompt structure.

        Prompts with the same structure (number of points, box or not, mask input or not) are stacked
        and decoded together, ``max_batch`` at a time. A prompt with no points, box or mask input asks the model for its
        unprompted guess (SAM pads one "not a point"). ``fit``: see :meth:`predict_batch_all_outputs`.

        Returns:
            One :class:`Prediction` per prompt, in the order given.
        """
        return self._predict(prompts, fit, slice(1, None) if multimask_output else slice(0, 1))

    def predict_batch_both(self, prompts: Sequence[Prompt]) -> list[tuple[Prediction, Prediction]]:
        """``(multimask, single)`` predictions of each prompt from one decoder pass (see :meth:`predict_batch`)."""
        return [(p.select(slice(1, None)), p.select(slice(0, 1))) for p in self.predict_batch_all_outputs(prompts)]

    def predict_batch_all_outputs(self, prompts: Sequence[Prompt], fit: bool = True) -> list[Prediction]:
        """All four decoder outputs per prompt: index 0 = single-mask output, 1..3 = multimask candidates.

        With ``fit`` every prompt is first fitted to the image (``Prompt.fitted_to``): a point off the
        image or a box that misses it raises ValueError; a box partly outside is clipped. Without it
        prompts go to the model as given (boxes that a model-frame rule made, which may reach into
        the padding, as the volume engine's propagated boxes do).
        """
        return self._predict(prompts, fit, slice(None))

    def _predict(self, prompts: Sequence[Prompt], fit: bool, outputs: slice) -> list[Prediction]:
        """The ``outputs`` tokens of every prompt (only those are mapped back to the image)."""
        started = time.perf_counter()
        if fit:
            prompts = [prompt.fitted_to(self.geometry.original_shape) for prompt in prompts]
        groups: dict[tuple[int, bool, bool], list[int]] = defaultdict(list)
        for index, prompt in enumerate(prompts):
            n_points = 0 if prompt.points is None else len(prompt.points)
            groups[(n_points, prompt.box is not None, prompt.mask_input is not None)].append(index)
        results: list[Prediction | None] = [None] * len(prompts)
        for indices in groups.values():
            size = self.decode_batch if len(indices) > 1 else 1
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                for index, prediction in zip(chunk, self._decode_group([prompts[i] for i in chunk], outputs)):
                    results[index] = prediction
        self.decode_seconds += time.perf_counter() - started
        return results  # type: ignore[return-value]

    def decode_low_res(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, np.ndarray]:
        """Decode prompts of one structure (same number of points, box or not, mask or not) in one call.

        Returns:
            ``(B, 4, L, L)`` float32 low-resolution logits and ``(B, 4)`` float32 predicted IoU
            (token 0 = single-mask output, 1..3 = multimask candidates). Map logits to the image
            with ``self.geometry.logits_to_original``.
        """
        first = prompts[0]
        n_points = 0 if first.points is None else len(first.points)
        has_box, has_mask = first.box is not None, first.mask_input is not None
        geometry = self.geometry
        coords = labels = boxes = masks = None
        if n_points:
            coords = np.stack([geometry.points_to_input(present(p.points)) for p in prompts]).astype(np.float32)
            labels = np.stack([present(p.labels) for p in prompts]).astype(np.int64)
        elif not has_box and not has_mask:
            coords = np.zeros((len(prompts), 1, 2), dtype=np.float32)
            labels = -np.ones((len(prompts), 1), dtype=np.int64)
        if has_box:
            boxes = np.stack([geometry.boxes_to_input(present(p.box)) for p in prompts]).astype(np.float32)
        if has_mask:
            side = self.model.low_res_size
            for prompt in prompts:
                if present(prompt.mask_input).shape != (side, side):
                    raise ValueError(
                        f"mask_input must be ({side}, {side}) logits, got {present(prompt.mask_input).shape}"
                    )
            masks = np.stack([present(p.mask_input) for p in prompts])[:, None].astype(np.float32)
        logits, iou = self.model.decode_arrays(self.image_embedding, coords, labels, boxes, masks)
        return self._finite(logits, "mask logits"), self._finite(iou, "predicted IoU")

    def _finite(self, array: np.ndarray, what: str) -> np.ndarray:
        """``array`` when every value is finite; :class:`ModelOutputError` otherwise."""
        if not np.isfinite(array).all():
            weights = getattr(self.model, "weights_sha256", "unknown")
            raise ModelOutputError(f"{self.model.name} (weights {weights[:12]})", what)
        return array

    def _decode_group(self, prompts: list[Prompt], outputs: slice) -> list[Prediction]:
        low_res, iou = self.decode_low_res(prompts)
        low_res, iou = low_res[:, outputs], iou[:, outputs]
        full = self.geometry.logits_to_original(low_res) > self.model.mask_threshold
        return [Prediction(full[i], iou[i], low_res[i], self.geometry) for i in range(len(prompts))]
