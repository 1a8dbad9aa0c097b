"""The process that trains one study run: ``python -m samia.study.train_process RESULT.json`` reads a
:class:`~samia.finetuning.FinetuneConfig` as JSON on stdin, runs it, and writes what it measured (or
the samia error that stopped it) as JSON to ``RESULT.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samia.errors import SamiaError
from samia.files import atomic_write_bytes
from samia.finetuning import FinetuneConfig, finetune


def train(values: dict[str, Any]) -> dict[str, Any]:
    """Run one fine-tuning configuration; a samia error comes back as ``{"error": text}``."""
    try:
        outcome = finetune(FinetuneConfig.from_dict(values))
    except SamiaError as error:
        return {"error": f"{type(error).__name__}: {' '.join(str(error).split())}"}
    history = outcome.history
    return {
        "best_epoch": int(outcome.best_epoch),
        "best_val_dice": float(outcome.best_val_dice),
        "stopped_early": bool(outcome.stopped_early),
        "epochs": int(history["epoch"].max()),
        "train_seconds": float(history["seconds"].sum()),
        "peak_rss_mb": float(history["peak_rss_mb"].max()),
        **outcome.parameters,
    }


def main() -> None:
    record = train(json.loads(sys.stdin.read()))
    atomic_write_bytes(Path(sys.argv[1]), json.dumps(record).encode())


if __name__ == "__main__":
    main()
