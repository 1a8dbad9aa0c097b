"""One training step on one image: one embedding, all its objects' prompts in one decoder batch.

SAM's mask decoder repeats the image embedding for each prompt of a batch, so a step decodes the
``B`` prompts of one image against its one embedding; steps over several images accumulate
gradients. The loss compares the decoder's low-resolution logits with the ground truth brought
to the same ``L x L`` grid (:func:`samia.finetuning.data.low_res_targets`): the decoder is trained
at the resolution it predicts, and no upsampling enters the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from samia.embeddings import EmbeddingCache
from samia.finetuning.data import TrainingImage, low_res_targets
from samia.finetuning.losses import PromptedMaskLoss
from samia.finetuning.training_prompts import TrainingPromptSampler, error_region_clicks
from samia.models import PromptableSegmenter
from samia.transforms import InputGeometry


@dataclass(frozen=True)
class StepInputs:
    """A training step's tensors, coordinates in model-input pixels, on the model's device.

    Attributes:
        pixels: ``(1, 3, h, w)`` float32 0..255 resized image (the encoder runs); or None.
        embedding: ``(1, C, E, E)`` float32 cached embedding (``decoder`` method); or None.
        points: ``(B, N, 2)`` float32 ``(x, y)``, or None.
        labels: ``(B, N)`` int64 (1 positive, 0 negative), None iff ``points`` is None.
        boxes: ``(B, 4)`` float32 XYXY, or None.
        targets: ``(B, 1, L, L)`` float32 soft ground truth in ``[0, 1]``.
    """

    pixels: torch.Tensor | None
    embedding: torch.Tensor | None
    points: torch.Tensor | None
    labels: torch.Tensor | None
    boxes: torch.Tensor | None
    targets: torch.Tensor

    @property
    def n_prompts(self) -> int:
        return int(self.targets.shape[0])


def prompt_tensors(
    geometry: InputGeometry,
    points: np.ndarray | None,
    labels: np.ndarray | None,
    boxes: np.ndarray | None,
    device: torch.device,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Stacked prompts in original pixels -> ``(points, labels, boxes)`` tensors in model-input pixels."""

    def tensor(array: np.ndarray | None, dtype: torch.dtype) -> torch.Tensor | None:
        return None if array is None else torch.as_tensor(array, dtype=dtype, device=device)

    return (
        tensor(None if points is None else geometry.points_to_input(points), torch.float32),
        tensor(labels, torch.int64),
        tensor(None if boxes is None else geometry.boxes_to_input(boxes), torch.float32),
    )


def image_input(
    image: TrainingImage, cache: EmbeddingCache | None, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(pixels, embedding)`` of a training image: exactly one of them is a tensor (see :class:`StepInputs`).

    Raises:
        RuntimeError: the cached embedding is missing (the cache folder was removed mid-run).
    """
    if image.embedding_key is None:
        assert image.resized is not None
        return torch.as_tensor(image.resized, device=device).permute(2, 0, 1)[None].float(), None
    embedding = None if cache is None else cache.get(image.embedding_key)
    if embedding is None:
        raise RuntimeError(f"embedding of {image.case_id} (slice {image.slice_index}) is missing from the cache")
    return None, torch.as_tensor(embedding, device=device)


def make_step_inputs(
    image: TrainingImage,
    model: PromptableSegmenter,
    sampler: TrainingPromptSampler,
    objects_per_image: int,
    rng: np.random.Generator,
    cache: EmbeddingCache | None,
) -> StepInputs:
    """Draw this step's objects (at most ``objects_per_image``, seeded subset) and their prompts."""
    chosen = np.sort(rng.choice(image.n_objects, size=min(image.n_objects, objects_per_image), replace=False))
    masks = image.masks[chosen]
    prompts = sampler(masks, rng)
    points, labels, boxes = prompt_tensors(image.geometry, prompts.points, prompts.labels, prompts.boxes, model.device)
    pixels, embedding = image_input(image, cache, model.device)
    targets = low_res_targets(masks, image.geometry, model.low_res_size).to(model.device)
    return StepInputs(pixels, embedding, points, labels, boxes, targets)


class TrainingStep(nn.Module):
    """The loss of one image's prompts; the module that ``DistributedDataParallel`` wraps.

    Round 0 decodes the sampled prompts; each of ``correction_clicks`` further rounds adds one click
    per prompt from the error region of the previous round's single-mask output
    (:func:`~samia.finetuning.training_prompts.error_region_clicks`). The step's loss is the mean of the
    rounds' :class:`~samia.finetuning.losses.PromptedMaskLoss`.

    Args:
        model: the model being trained.
        correction_clicks: number of corrective rounds (0 = prompts only).
    """

    def __init__(self, model: PromptableSegmenter, correction_clicks: int) -> None:
        super().__init__()
        self.model = model
        self.correction_clicks = int(correction_clicks)
        self.loss = PromptedMaskLoss()

    def forward(self, inputs: StepInputs, rng: np.random.Generator) -> torch.Tensor:
        """Scalar loss of ``inputs``; ``rng`` draws the corrective clicks."""
        embedding = inputs.embedding if inputs.pixels is None else self.model.encode(inputs.pixels)
        points, labels = inputs.points, inputs.labels
        total = torch.zeros((), device=inputs.targets.device)
        for round_index in range(1 + self.correction_clicks):
            logits, iou = self.model.decode_all(embedding, points, labels, inputs.boxes)
            total = total + self.loss(logits, iou, inputs.targets)
            if round_index < self.correction_clicks:
                clicks, click_labels = error_region_clicks(
                    logits[:, 0].detach() > self.model.mask_threshold, inputs.targets[:, 0], rng, self.model.input_size
                )
                clicks, click_labels = clicks.to(total.device), click_labels.to(total.device)
                points = clicks if points is None else torch.cat([points, clicks], dim=1)
                labels = click_labels if labels is None else torch.cat([labels, click_labels], dim=1)
        return total / (1 + self.correction_clicks)
