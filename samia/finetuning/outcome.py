"""What a fine-tuning run reports while it trains (:class:`FinetuneProgress`) and what it returns
(:class:`FinetuneOutcome`), for the one-truth loop and the multi-rater loop alike."""

from __future__ import annotations

import resource
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from samia.finetuning.checkpoints import RunState


class FinetuneProgress(Protocol):
    """What the loop reports (on process 0 only); the CLI draws progress bars from it."""

    def start_epoch(self, epoch: int, steps: int) -> None: ...

    def step(self, loss: float, samples_per_s: float) -> None: ...

    def end_epoch(self, record: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class FinetuneOutcome:
    """A finished (or resumed and finished) run.

    Attributes:
        out: the run folder.
        best_path: ``out/best.pt`` (pass it as ``--checkpoint`` with the base model's name).
        best_epoch: the best epoch by validation Dice (multi-rater runs: by validation GED; 0 = the base model was never beaten).
        best_val_dice: the validation Dice of that epoch.
        history: one row per epoch (``history.csv``).
        stopped_early: patience ran out before ``epochs``.
        parameters: :func:`~samia.finetuning.methods.parameter_counts` of the trained model (also in
            ``finetune.yaml``'s provenance).
        rank: this process's rank under ``torchrun`` (0 = the process that wrote the files).
        train_cases, val_cases: the case ids trained and validated on (the split, by case).
    """

    out: Path
    best_path: Path
    best_epoch: int
    best_val_dice: float
    history: pd.DataFrame
    stopped_early: bool
    parameters: dict[str, int | float]
    rank: int = 0
    train_cases: tuple[str, ...] = ()
    val_cases: tuple[str, ...] = ()

    @classmethod
    def of_run(
        cls, out: Path, state: RunState, history: pd.DataFrame, provenance: dict[str, Any], rank: int = 0
    ) -> FinetuneOutcome:
        """The outcome of the run in ``out`` at ``state``; parameter counts and split from ``provenance``
        (``finetune.yaml``'s)."""
        parameters = {k: provenance[k] for k in ("trainable_parameters", "total_parameters", "trainable_share")}
        return cls(
            out,
            out / "best.pt",
            state.best_epoch,
            state.best_val_dice,
            history,
            state.stopped_early,
            parameters,
            rank,
            tuple(provenance["train_cases"]),
            tuple(provenance["val_cases"]),
        )


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MiB (``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
