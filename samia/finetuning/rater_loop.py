"""Fine-tuning on multi-rater data (:mod:`samia.data.raters`): the Uncertainty-aware Adapter, and the
deterministic methods trained on the same masks for comparison.

Every step takes one training image; each of its objects (at most ``objects_per_image``) is
prompted with the tight box of the union of its raters' masks, each side moved by up to
``box_jitter_px``, and trained against **every one of its raters' masks** (one term each; a
deterministic method so learns the raters' average). Objects and boxes come from a generator
seeded by ``(seed, epoch, image)``, so a resumed run continues as an uninterrupted one.

``ua_adapter`` (:mod:`samia.models.ua_adapter`): for each rater's mask the posterior net gives a
code, which conditions the encoder's adapters; the loss is the mask loss plus
``kl_weight * KL(posterior || prior)``, averaged over the object's raters (the ELBO of each mask),
so each step contrasts the raters of one image. The frozen encoder blocks before the conditioned ones run
once per image (their output is kept in memory for the whole run).

Validation (epoch 0 = the base model): per object, the box of the raters' union, no jitter;
``val_ged`` is the GED of the model's masks (``val_samples`` from the prior for ``ua_adapter``, the
one answer otherwise) against the raters, ``val_dice`` the Dice of its most likely answer (the
prior's mean code) against the raters' majority vote. The best epoch is the lowest ``val_ged``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from samia.data.raters import (
    RaterCase,
    RaterObject,
    RaterScan,
    rater_data_sha256,
    rater_objects,
    read_rater_labels,
    scan_rater_dataset,
)
from samia.errors import ConfigurationError, DatasetLayoutError
from samia.finetuning.checkpoints import RunState, load_last, save_best, save_last
from samia.finetuning.config import FinetuneConfig, check_run_folder, write_run_config
from samia.finetuning.data import low_res_targets, split_cases
from samia.finetuning.history import write_history
from samia.finetuning.losses import PromptedMaskLoss
from samia.finetuning.methods import METHODS, make_optimizer, parameter_counts, prepare, set_training_mode
from samia.finetuning.outcome import FinetuneOutcome, FinetuneProgress, peak_rss_mb
from samia.finetuning.training_prompts import jittered_box
from samia.metrics import dice
from samia.metrics.multirater import generalised_energy_distance, majority_vote, sample_diversity
from samia.models import PromptableSegmenter, build_model
from samia.models.ua_adapter import (
    decode_with_latent,
    draw,
    encode_with_latent,
    kl_divergence,
    latent_inputs,
    latent_nets,
    latent_samples,
    posterior_inputs,
    prefix_features,
)
from samia.prompts.seeding import object_rng
from samia.transforms import InputGeometry, get_preset, input_geometry, preset_for, to_rgb_uint8
from samia.version import __version__

LATENT_GRADIENT_CLIP = 1.0
"""A ``ua_adapter`` step's gradient is scaled down to at most this L2 norm over every parameter
that trains: the KL term spikes when the prior narrows faster than the posterior follows, and one
such step can throw the adapters far off (runs without a bound diverged at epoch 1 to 13)."""


@dataclass(frozen=True, eq=False)
class RaterImage:
    """One 2D image of a multi-rater dataset, ready for training steps.

    Attributes:
        case_id: its case.
        geometry: the image's geometry for the model input.
        resized: ``(h, w, 3)`` uint8 model-input image.
        objects: its objects, each with every annotating rater's mask (original grid).
    """

    case_id: str
    geometry: InputGeometry
    resized: np.ndarray
    objects: tuple[RaterObject, ...]


def load_rater_images(
    cases: list[RaterCase], scan: RaterScan, model: PromptableSegmenter, config: FinetuneConfig
) -> list[RaterImage]:
    """Read every case once: its image resized for the model, its objects with their raters' masks.

    Raises:
        DatasetLayoutError: no object of at least ``min_area`` pixels (the raters' union) anywhere.
        InputError: a file is missing, unreadable or invalid (training does not skip bad files).
    """
    fixed = None if config.reading.preset is None else get_preset(config.reading.preset)
    images = []
    for case in cases:
        image, labels = read_rater_labels(case, scan)
        objects = rater_objects(labels, scan.raters, config.reading.minimum_area)
        if not objects:
            continue
        rgb = to_rgb_uint8(image, fixed or preset_for(image))
        geometry = input_geometry(model.input_pipeline, rgb.shape[:2], model.input_size)
        images.append(RaterImage(case.case_id, geometry, geometry.resize_image(rgb), tuple(objects)))
    if not images:
        raise DatasetLayoutError(
            scan.root, f"no object of at least {config.reading.minimum_area} pixels in its {len(cases)} case(s)"
        )
    return images


class RaterTrainer:
    """Runs one :class:`FinetuneConfig` on multi-rater data in this process (module docstring)."""

    def __init__(self, config: FinetuneConfig, progress: FinetuneProgress | None) -> None:
        if config.val is not None:
            raise ConfigurationError(
                "multi-rater fine-tuning holds out --val-fraction or --val-case of --data; no --val"
            )
        self.config, self.progress, self.out = config, progress, Path(config.out)
        self.scan = scan_rater_dataset(config.data, config.reading.layout)
        self.model = build_model(config.model.name, config.model.checkpoint, config.model.device)
        train, val = self._split()
        check_run_folder(self.out, config, self.provenance)
        self.train_images = load_rater_images(train, self.scan, self.model, config)
        self.val_images = load_rater_images(val, self.scan, self.model, config)
        self.spec = prepare(self.model, config)
        self.provenance.update(parameter_counts(self.model))
        self.out.mkdir(parents=True, exist_ok=True)
        write_run_config(self.out / "finetune.yaml", config, self.provenance)
        self.optimizer = make_optimizer(self.model, config)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.loss = PromptedMaskLoss()
        self.latent = latent_nets(self.model)
        self.features: dict[int, torch.Tensor] = {}  # image index -> frozen prefix (ua_adapter) or embedding
        last = self.out / "last.pt"
        self.state = load_last(last, self.model, self.optimizer) if last.is_file() else RunState(score="val_ged")

    def _split(self) -> tuple[list[RaterCase], list[RaterCase]]:
        config, cases = self.config, self.scan.cases
        if config.cases is not None:
            cases = [c for c in cases if c.case_id in config.cases]
        if config.val_cases is not None:
            val = [c for c in self.scan.cases if c.case_id in config.val_cases]
            train = [c for c in cases if c.case_id not in config.val_cases]
        else:
            train, val = split_cases(cases, config.val_fraction, config.seed, config.data)
        self.provenance: dict[str, Any] = {
            "samia_version": __version__,
            "base_model": self.model.name,
            "base_weights_sha256": self.model.weights_sha256,
            "train_data_sha256": rater_data_sha256(train),
            "val_data_sha256": rater_data_sha256(val),
            "train_cases": [c.case_id for c in train],
            "val_cases": [c.case_id for c in val],
            "layout": self.scan.layout,
            "raters": list(self.scan.raters),
            "processes": 1,
            "effective_images_per_step": config.training.images_per_step,
        }
        return train, val

    def _pixels(self, image: RaterImage) -> torch.Tensor:
        return torch.as_tensor(image.resized, device=self.model.device).permute(2, 0, 1)[None].float()

    def _frozen(self, index: int, image: RaterImage) -> torch.Tensor:
        """The part of the forward pass no parameter in training changes, computed once per image:
        the prefix features (``ua_adapter``) or the whole embedding (``decoder``)."""
        if index not in self.features:
            with torch.no_grad():
                pixels = self._pixels(image)
                self.features[index] = (
                    prefix_features(self.model, pixels) if self.latent is not None else self.model.encode(pixels)
                )
        return self.features[index]

    def step_loss(self, index: int, image: RaterImage, rng: np.random.Generator) -> torch.Tensor:
        """The loss of one image's objects (at most ``objects_per_image``, drawn with ``rng``), each
        against every one of its raters' masks under one jittered box."""
        training = self.config.training
        chosen = np.sort(
            rng.choice(len(image.objects), size=min(len(image.objects), training.objects_per_image), replace=False)
        )
        boxes, targets = [], []
        for obj in (image.objects[i] for i in chosen):
            box = jittered_box(obj.masks.any(axis=0), rng, training.box_jitter_px)
            boxes.extend([box] * len(obj.raters))
            targets.extend(obj.masks)
        box_tensor = torch.as_tensor(
            image.geometry.boxes_to_input(np.stack(boxes)), dtype=torch.float32, device=self.model.device
        )
        target = low_res_targets(np.stack(targets), image.geometry, self.model.low_res_size).to(self.model.device)
        if self.latent is not None:
            pixels = self._pixels(image)
            prior_in = latent_inputs(self.model, pixels, box_tensor)
            prior = self.latent.prior(prior_in)
            posterior = self.latent.posterior(posterior_inputs(self.model, prior_in, target, box_tensor))
            generator = torch.Generator(device=self.model.device).manual_seed(int(rng.integers(2**63)))
            codes = draw(posterior[0], posterior[1], generator)
            embeddings = encode_with_latent(self.model, self._frozen(index, image), codes)
            decoded = [
                decode_with_latent(self.model, embeddings[i : i + 1], codes[i : i + 1], box_tensor[i : i + 1])
                for i in range(len(boxes))
            ]
            logits, iou = torch.cat([d[0] for d in decoded]), torch.cat([d[1] for d in decoded])
            kl = kl_divergence(posterior, prior).mean()
            return self.loss(logits, iou, target) + training.kl_weight * kl
        if METHODS[self.config.method].caches_embeddings:
            embedding = self._frozen(index, image)
        else:
            embedding = self.model.encode(self._pixels(image))
        logits, iou = self.model.decode_all(embedding, boxes=box_tensor)
        return self.loss(logits, iou, target)

    @torch.no_grad()
    def object_masks(self, image: RaterImage, obj: RaterObject, seed: int) -> np.ndarray:
        """The model's masks for ``obj`` (box of the raters' union) on the original grid:
        ``(val_samples, H, W)`` for ``ua_adapter`` (the first from the prior's mean), else ``(1, H, W)``."""
        from samia.prompts.primitives import tight_box

        box = image.geometry.boxes_to_input(tight_box(np.asarray(obj.masks.any(axis=0)))[None])[0]
        if self.latent is not None:
            logits = latent_samples(self.model, image.resized, box, self.config.training.val_samples, seed)
        else:
            boxes = torch.as_tensor(box[None], dtype=torch.float32, device=self.model.device)
            logits, _ = self.model.decode(self.model.encode(self._pixels(image)), boxes=boxes, multimask_output=False)
        original = image.geometry.logits_to_original(logits[:, 0].float().cpu().numpy())
        masks: np.ndarray = original > self.model.mask_threshold
        return masks

    def validate(self) -> dict[str, float]:
        """``val_ged``, ``val_dice`` (module docstring) and ``val_diversity`` (the mean distance between
        the samples of an object: 0 when the model gives one answer) over every validation object."""
        geds, dices, diversities = [], [], []
        for image in self.val_images:
            for obj in image.objects:
                seed = int(object_rng(self.config.seed, "val", image.case_id, obj.label).integers(2**31))
                masks = self.object_masks(image, obj, seed)
                geds.append(generalised_energy_distance(masks, obj.masks))
                dices.append(dice(masks[0], majority_vote(obj.masks)))
                diversities.append(sample_diversity(masks))
        return {
            "val_dice": float(np.nanmean(dices)),
            "val_ged": float(np.mean(geds)),
            "val_diversity": float(np.mean(diversities)),
        }

    # ------------------------------------------------------------------------------------------

    def run(self) -> FinetuneOutcome:
        config, state = self.config, self.state
        if not state.history:
            self._finish_epoch(0, float("nan"), 0.0)
        for epoch in range(state.epochs_done + 1, config.training.epochs + 1):
            if state.stopped_early:
                break
            started = time.perf_counter()
            loss, images = self._train_epoch(epoch)
            self._finish_epoch(epoch, loss, time.perf_counter() - started, images)
        history = write_history(self.out, state.history)
        return FinetuneOutcome.of_run(self.out, state, history, self.provenance)

    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        config = self.config
        order = np.random.default_rng([config.seed, epoch]).permutation(len(self.train_images))
        per_step = config.training.images_per_step
        steps = math.ceil(len(order) / per_step)
        if self.progress:
            self.progress.start_epoch(epoch, steps)
        set_training_mode(self.model, True)
        total, started = 0.0, time.perf_counter()
        for step in range(steps):
            chunk = order[step * per_step : (step + 1) * per_step]
            self.optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for index in chunk:
                rng = object_rng(config.seed, "train", epoch, int(index))
                loss = self.step_loss(int(index), self.train_images[index], rng)
                (loss / len(chunk)).backward()
                step_loss += loss.item() / len(chunk)
                total += loss.item()
            if self.latent is not None:
                nn.utils.clip_grad_norm_(self.trainable, LATENT_GRADIENT_CLIP)
            self.optimizer.step()
            if self.progress:
                self.progress.step(step_loss, (step + 1) * per_step / (time.perf_counter() - started))
        return total / len(order), len(order)

    def _finish_epoch(self, epoch: int, loss: float, seconds: float, images: int = 0) -> None:
        state = self.state
        set_training_mode(self.model, False)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": loss,
            **self.validate(),
            "images_per_s": images / seconds if seconds else 0.0,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
        }
        improved = state.record(entry, self.config.training.patience)
        if improved:
            meta = {
                "config": self.config.to_dict(),
                "provenance": self.provenance,
                "epoch": epoch,
                **{k: entry[k] for k in ("val_dice", "val_ged")},
            }
            save_best(self.out / "best.pt", self.model, self.spec, meta)
        save_last(self.out / "last.pt", self.model, self.optimizer, state)
        write_history(self.out, state.history)
        if self.progress:
            self.progress.end_epoch(state.history[-1])
