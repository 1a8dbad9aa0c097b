"""The files of a fine-tuning run: ``last.pt`` (to resume) and ``best.pt`` (to use).

``last.pt`` (written atomically after every epoch)::

    {"trainable": {name: tensor},      # the parameters that train, nothing else
     "optimizer": AdamW state dict,
     "state": RunState record}         # epochs done, best so far, patience counter, history

No random-generator state is needed: every random choice of epoch ``e`` derives from
``(seed, e, image)``, so a resumed run continues exactly as an uninterrupted one.

``best.pt``: for ``decoder``/``full``/``ssam``, ``{"model": full state dict, "finetune": meta}`` (S-SAM's
singular values merged back into plain weights; loadable by
:func:`samia.models.build_model` like any fine-tuned checkpoint); for ``lora``/``adapter``, an adapter
file (:mod:`samia.models.adapters`). ``meta`` holds the run config, the base weights hash, the data
hashes, the epoch and its validation Dice.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from samia.errors import CheckpointError
from samia.files import atomic_write_bytes
from samia.models import PromptableSegmenter
from samia.models.adapters import AdapterSpec, save_adapter_file
from samia.models.svd_tuning import merged_state_dict

LOWER_IS_BETTER = frozenset({"val_ged"})
"""Validation scores for which a lower value is better."""


@dataclass
class RunState:
    """Where a run stands after its last finished epoch.

    Attributes:
        epochs_done: finished training epochs (0 = only the zero-shot validation, or nothing yet).
        best_val_dice: the mean validation Dice of the best epoch (NaN before the first validation).
        best_epoch: the best epoch (0 = the base model).
        epochs_since_best: epochs without improvement (early stopping counter).
        stopped_early: patience ran out; the run is over.
        history: one record per validated epoch (see :func:`samia.finetuning.loop.finetune`).
        score: the history column that decides the best epoch: ``val_dice`` (higher is better), or
            ``val_ged`` (multi-rater runs; lower is better).
        best_score: its value at the best epoch (NaN before the first validation).
    """

    epochs_done: int = 0
    best_val_dice: float = float("nan")
    best_epoch: int = -1
    epochs_since_best: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    score: str = "val_dice"
    best_score: float = float("nan")

    def record(self, entry: dict[str, Any], patience: int) -> bool:
        """Add an epoch's history ``entry`` (with ``epoch``, ``val_dice`` and :attr:`score`); True if
        it is the new best."""
        value = float(entry[self.score])
        best = self.best_val_dice if self.score == "val_dice" else self.best_score  # records before `score`
        improved = self.best_epoch < 0 or (value < best if self.score in LOWER_IS_BETTER else value > best)
        if improved:
            self.best_score, self.best_val_dice, self.best_epoch, self.epochs_since_best = (
                value,
                float(entry["val_dice"]),
                int(entry["epoch"]),
                0,
            )
        else:
            self.epochs_since_best += 1
            self.stopped_early = self.epochs_since_best >= patience
        self.epochs_done = int(entry["epoch"])
        self.history.append({**entry, "best": improved})
        return improved


def _save(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def trainable_state(model: PromptableSegmenter) -> dict[str, torch.Tensor]:
    """Detached CPU copies of the parameters that train (``requires_grad``), by name."""
    return {name: p.detach().cpu().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_last(path: Path, model: PromptableSegmenter, optimizer: torch.optim.Optimizer, state: RunState) -> None:
    """Write ``last.pt`` atomically (see the module docstring)."""
    _save(path, {"trainable": trainable_state(model), "optimizer": optimizer.state_dict(), "state": asdict(state)})


def load_last(path: Path, model: PromptableSegmenter, optimizer: torch.optim.Optimizer) -> RunState:
    """Restore ``model``'s trainable parameters and ``optimizer`` from ``last.pt``; return the run state.

    Raises:
        CheckpointError: unreadable file, or its parameters are not this run's trainable ones.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        trainable, optimizer_state, state = loaded["trainable"], loaded["optimizer"], RunState(**loaded["state"])
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(path, f"cannot resume from it ({error.__class__.__name__}: {error})") from error
    expected = {name for name, p in model.named_parameters() if p.requires_grad}
    if set(trainable) != expected:
        raise CheckpointError(
            path, f"holds {len(trainable)} trainable tensors that do not match this run's {len(expected)}"
        )
    model.load_state_dict(trainable, strict=False)
    optimizer.load_state_dict(optimizer_state)
    return state


def save_best(path: Path, model: PromptableSegmenter, spec: AdapterSpec | None, meta: dict[str, Any]) -> None:
    """Write ``best.pt``: a full state dict (``spec`` None) or an adapter file (see the module docstring)."""
    if spec is None:
        _save(path, {"model": merged_state_dict(model), "finetune": meta})
    else:
        save_adapter_file(path, model, spec, meta)
