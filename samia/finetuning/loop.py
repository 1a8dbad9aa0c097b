"""The fine-tuning loop: data, method, epochs, validation, early stopping, resume, DDP.

Epoch ``e`` (1-based) visits every training image once in the order of a ``DistributedSampler``
seeded by ``(seed, e)`` (process ``r`` of ``N`` takes every ``N``-th image); an image's prompts
come from a generator seeded by ``(seed, e, image)``. Each process accumulates the gradients of
``images_per_step`` images (each image's loss divided by their number) and DDP averages them over
processes, so ``N`` processes x ``k`` images equals one process x ``N k`` images, up to float
rounding. Epoch 0 is the validation of the base model before any training.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler

from samia.data import Case, build_manifest, select_cases
from samia.embeddings import EmbeddingCache
from samia.errors import ConfigurationError
from samia.finetuning.checkpoints import RunState, load_last, save_best, save_last
from samia.finetuning.config import FinetuneConfig, check_run_folder, write_run_config
from samia.finetuning.data import (
    TrainingImage,
    case_digests,
    check_no_leakage,
    dataset_hash,
    load_training_images,
    split_cases,
)
from samia.finetuning.distributed import DistributedContext
from samia.finetuning.history import write_history
from samia.finetuning.methods import METHODS, make_optimizer, parameter_counts, prepare, set_training_mode
from samia.finetuning.outcome import FinetuneOutcome, FinetuneProgress, peak_rss_mb
from samia.finetuning.step import TrainingStep, make_step_inputs
from samia.finetuning.training_prompts import TrainingPromptSampler
from samia.finetuning.validation import validation_sums
from samia.models import build_model
from samia.prompts import get_strategy
from samia.prompts.seeding import object_rng
from samia.version import __version__

EMBEDDINGS_IN_MEMORY = 64
"""Cached embeddings kept in memory (4 MiB each for SAM-family models); the rest are read from disk."""


class Trainer:
    """Runs one :class:`FinetuneConfig` in this process (see :func:`finetune`)."""

    def __init__(self, config: FinetuneConfig, context: DistributedContext, progress: FinetuneProgress | None) -> None:
        self.config = config
        self.context = context
        self.progress = progress if context.is_main else None
        self.out = Path(config.out)
        self.method = METHODS[config.method]
        self.strategies = [get_strategy(name) for name in config.val_strategies]
        self.model = build_model(config.model.name, config.model.checkpoint, context.device)
        train_cases, val_cases, self.provenance = self._split()
        check_run_folder(self.out, self.config, self.provenance)
        cache_dir = Path(config.embedding_cache_dir) if config.embedding_cache_dir else self.out / "embeddings"
        self.cache = EmbeddingCache(EMBEDDINGS_IN_MEMORY, cache_dir) if self.method.caches_embeddings else None
        self.train_images = self._images(train_cases, config.data)
        self.val_images = self._images(val_cases, config.val or config.data)
        context.barrier()  # every process's share of the embeddings is on disk
        self.spec = prepare(self.model, config)
        self.provenance.update(parameter_counts(self.model))
        if context.is_main:  # every process read the old one before the barrier above
            self.out.mkdir(parents=True, exist_ok=True)
            write_run_config(self.out / "finetune.yaml", self.config, self.provenance)
        self.optimizer = make_optimizer(self.model, config)
        self.sampler = TrainingPromptSampler.from_config(config)
        self.step_module: torch.nn.Module = TrainingStep(self.model, config.training.correction_clicks)
        if context.distributed:
            # buffers never change in training (frozen BatchNorm statistics): nothing to broadcast
            self.step_module = DistributedDataParallel(self.step_module, broadcast_buffers=False)
        last = self.out / "last.pt"
        self.state = load_last(last, self.model, self.optimizer) if last.is_file() else RunState()

    def _split(self) -> tuple[list[Case], list[Case], dict[str, Any]]:
        config = self.config
        cases = build_manifest(
            config.data, config.reading.layout, config.reading.modality, instances=config.reading.instances
        )
        if config.val is None and config.val_cases is None:
            train, val = split_cases(
                select_cases(cases, config.cases, config.data), config.val_fraction, config.seed, config.data
            )
        else:
            pool = (
                cases
                if config.val is None
                else build_manifest(
                    config.val, config.reading.layout, config.reading.modality, instances=config.reading.instances
                )
            )
            val = select_cases(pool, config.val_cases, config.val or config.data)
            held_out = {c.case_id for c in val} if config.val is None else set()
            remaining = [c for c in cases if c.case_id not in held_out]
            train = remaining if config.cases is None else select_cases(cases, config.cases, config.data)
        train_digests, val_digests = case_digests(train), case_digests(val)
        check_no_leakage(train_digests, val_digests)
        provenance = {
            "samia_version": __version__,
            "base_model": self.model.name,
            "base_weights_sha256": self.model.weights_sha256,
            "train_data_sha256": dataset_hash(train, train_digests),
            "val_data_sha256": dataset_hash(val, val_digests),
            "train_cases": [c.case_id for c in train],
            "val_cases": [c.case_id for c in val],
            "processes": self.context.world_size,
            "effective_images_per_step": config.training.images_per_step * self.context.world_size,
        }
        return train, val, provenance

    def _images(self, cases: list[Case], source: str) -> list[TrainingImage]:
        return load_training_images(
            cases, self.model, self.config, source, self.cache, self.context.rank, self.context.world_size
        )

    def run(self) -> FinetuneOutcome:
        config, state = self.config, self.state
        if not state.history:
            self._finish_epoch(0, float("nan"), 0.0, 0.0, 0.0)
        for epoch in range(state.epochs_done + 1, config.training.epochs + 1):
            if state.stopped_early:
                break
            started = time.perf_counter()
            loss, prompts, images = self._train_epoch(epoch)
            seconds = time.perf_counter() - started
            self._finish_epoch(epoch, loss, prompts / seconds, images / seconds, seconds)
        history = write_history(self.out, state.history) if self.context.is_main else pd.DataFrame(state.history)
        return FinetuneOutcome.of_run(self.out, state, history, self.provenance, self.context.rank)

    def _gradient_sync(self, syncing: bool) -> AbstractContextManager[object]:
        """Gradients reduce across processes on the last image of a step only (DDP's ``no_sync``)."""
        if syncing or not isinstance(self.step_module, DistributedDataParallel):
            return nullcontext()
        return self.step_module.no_sync()

    def _train_epoch(self, epoch: int) -> tuple[float, int, int]:
        """One pass over the training images; returns ``(mean loss, prompts, images)`` over all processes."""
        config, context = self.config, self.context
        indices = cast("Dataset[int]", range(len(self.train_images)))  # the sampler only takes its len()
        sampler: DistributedSampler[int] = DistributedSampler(
            indices, context.world_size, context.rank, shuffle=True, seed=config.seed
        )
        sampler.set_epoch(epoch)
        order = list(sampler)
        steps = math.ceil(len(order) / config.training.images_per_step)
        if self.progress:
            self.progress.start_epoch(epoch, steps)
        set_training_mode(self.model, True)
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, prompts, images
        started = time.perf_counter()
        for step in range(steps):
            chunk = order[step * config.training.images_per_step : (step + 1) * config.training.images_per_step]
            self.optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for position, index in enumerate(chunk):
                rng = object_rng(config.seed, "train", epoch, index)
                inputs = make_step_inputs(
                    self.train_images[index],
                    self.model,
                    self.sampler,
                    config.training.objects_per_image,
                    rng,
                    self.cache,
                )
                syncing = not context.distributed or position == len(chunk) - 1
                with self._gradient_sync(syncing):
                    loss = self.step_module(inputs, rng)
                    (loss / len(chunk)).backward()
                value = loss.item()
                step_loss += value / len(chunk)
                totals += torch.tensor([value, inputs.n_prompts, 1], dtype=torch.float64)
            self.optimizer.step()
            if self.progress:
                rate = float(totals[1]) * context.world_size / (time.perf_counter() - started)
                self.progress.step(step_loss, rate)
        totals = context.sum(totals)
        return float(totals[0] / totals[2]), int(totals[1]), int(totals[2])

    def _finish_epoch(self, epoch: int, loss: float, prompts_per_s: float, images_per_s: float, seconds: float) -> None:
        """Validate, record, and (process 0) write ``best.pt``, ``last.pt`` and the curves."""
        config, context, state = self.config, self.context, self.state
        set_training_mode(self.model, False)
        sums = context.sum(
            validation_sums(
                self.model, self.val_images, self.strategies, config.seed, self.cache, context.rank, context.world_size
            )
        )
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": loss,
            "val_dice": float(sums[:, 0].sum() / sums[:, 1].sum()),
            **{f"val_dice_{s.name}": float(sums[i, 0] / sums[i, 1]) for i, s in enumerate(self.strategies)},
            "samples_per_s": prompts_per_s,
            "images_per_s": images_per_s,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
        }
        improved = state.record(entry, config.training.patience)
        if context.is_main:
            if improved:
                meta = {
                    "config": config.to_dict(),
                    "provenance": self.provenance,
                    "epoch": epoch,
                    "val_dice": entry["val_dice"],
                }
                save_best(self.out / "best.pt", self.model, self.spec, meta)
            save_last(self.out / "last.pt", self.model, self.optimizer, state)
            write_history(self.out, state.history)
            if self.progress:
                self.progress.end_epoch(state.history[-1])
        context.barrier()


def finetune(config: FinetuneConfig, progress: FinetuneProgress | None = None) -> FinetuneOutcome:
    """Run (or resume) ``config``: write ``finetune.yaml``, ``best.pt``, ``last.pt``, ``history.csv``
    and ``curve.png`` into ``config.out``.

    Under ``torchrun`` each process calls this; process 0 writes the files and reports ``progress``.
    Re-running the same configuration into the same folder resumes after the last finished epoch
    (a finished run returns at once).

    History columns: ``epoch``, ``train_loss`` (mean over the epoch's images), ``val_dice`` (mean
    over validation prompts of all strategies), ``val_dice_<strategy>``, ``samples_per_s``
    (object prompts trained per second, all processes), ``images_per_s``, ``seconds``,
    ``peak_rss_mb`` (process 0), ``best``.

    Raises:
        ConfigurationError: invalid options; ``config.out`` holds another run; validation images
            also in the training data.
        DatasetLayoutError: too few cases to split; no object to train on.
        CheckpointError / MissingFileError: base weights or ``last.pt`` unusable.
    """
    from samia.data.raters import rater_layout_of

    if rater_layout_of(config.data, config.reading.layout):
        from samia.finetuning.rater_loop import RaterTrainer

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigurationError("multi-rater fine-tuning runs in one process; start it without torchrun")
        return RaterTrainer(config, progress).run()
    if config.method == "ua_adapter":
        raise ConfigurationError(
            f"--method ua_adapter learns from several raters' masks; {config.data} has one mask per object "
            "(multi-rater layouts: docs/guides/multirater.md)"
        )
    context = DistributedContext.start(config.model.device)
    try:
        return Trainer(config, context, progress).run()
    finally:
        context.stop()
