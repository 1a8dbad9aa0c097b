"""Validation Dice during training: ``samia evaluate``'s prompt strategies on the validation images.

Each object of each validation image is prompted with every validation strategy (same rules and
per-object seeds as ``samia evaluate``), decoded with multimask output off, mapped back to the
original grid and scored with :func:`samia.metrics.dice`. The checkpoint with the best mean Dice
over all (object, strategy) pairs is kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from samia.embeddings import EmbeddingCache
from samia.finetuning.data import TrainingImage
from samia.finetuning.step import image_input, prompt_tensors
from samia.metrics import dice
from samia.models import PromptableSegmenter
from samia.prompts import PromptStrategy
from samia.prompts.seeding import prompt_rng
from samia.types import Prompt, present


def validation_prompts(image: TrainingImage, strategy: PromptStrategy, seed: int) -> list[tuple[int, Prompt]]:
    """``(object index, prompt)`` for every prompt ``strategy`` makes for the objects of ``image``.

    Each object's generator is :func:`samia.prompts.seeding.prompt_rng`, as in ``samia evaluate``,
    so a validation object gets the same prompts as in an evaluation with the same seed.
    """
    jobs: list[tuple[int, Prompt]] = []
    for index, mask in enumerate(image.masks):
        label, component = image.identities[index]
        rng = prompt_rng(seed, image.case_id, image.slice_index, label, component, strategy.name)
        jobs.extend((index, prompt) for prompt in strategy(mask, rng))
    return jobs


@torch.no_grad()
def image_dice(
    model: PromptableSegmenter, image: TrainingImage, strategy: PromptStrategy, seed: int, embedding: torch.Tensor
) -> list[float]:
    """Single-mask Dice of every prompt ``strategy`` makes for the objects of ``image``."""
    jobs = validation_prompts(image, strategy, seed)
    groups: dict[tuple[int, bool], list[tuple[int, Prompt]]] = defaultdict(list)
    for job in jobs:
        groups[(0 if job[1].points is None else len(job[1].points), job[1].box is not None)].append(job)
    scores: list[float] = []
    for (n_points, has_box), group in groups.items():
        points = labels = boxes = None
        if n_points:
            points = np.stack([present(p.points) for _, p in group])
            labels = np.stack([present(p.labels) for _, p in group])
        if has_box:
            boxes = np.stack([present(p.box) for _, p in group])
        tensors = prompt_tensors(image.geometry, points, labels, boxes, model.device)
        logits, _ = model.decode(embedding, *tensors, multimask_output=False)
        masks = image.geometry.logits_to_original(logits[:, 0].float().cpu().numpy()) > model.mask_threshold
        scores.extend(dice(mask, image.masks[index]) for mask, (index, _) in zip(masks, group))
    return scores


@torch.no_grad()
def validation_sums(
    model: PromptableSegmenter,
    images: Sequence[TrainingImage],
    strategies: Sequence[PromptStrategy],
    seed: int,
    cache: EmbeddingCache | None,
    rank: int = 0,
    world_size: int = 1,
) -> torch.Tensor:
    """Dice sums and counts of this process's share of ``images`` (every ``world_size``-th from ``rank``).

    Returns:
        ``(S, 2)`` float64 CPU tensor: per strategy, the sum of Dice and the number of prompts.
        Summed over processes and divided, it gives each strategy's mean Dice.
    """
    sums = torch.zeros((len(strategies), 2), dtype=torch.float64)
    for image in images[rank::world_size]:
        pixels, embedding = image_input(image, cache, model.device)
        embedding = model.encode(pixels) if embedding is None else embedding
        for row, strategy in enumerate(strategies):
            scores = image_dice(model, image, strategy, seed, embedding)
            sums[row, 0] += float(np.sum(scores))
            sums[row, 1] += len(scores)
    return sums
