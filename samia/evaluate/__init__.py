"""Evaluation: plan (config), runner, crash-safe results store, summaries, prompt replay.

Names are imported on first use (PEP 562), so ``samia.evaluate.summary`` and friends load without
the model stack (torch) that the runner needs.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SELECTIONS": "samia.selection",
    "EvaluationConfig": "samia.evaluate.config",
    "EvaluationOutcome": "samia.evaluate.runner",
    "evaluate": "samia.evaluate.runner",
    "ProgressHooks": "samia.evaluate.progress",
    "ResultsStore": "samia.evaluate.store",
    "everything_instances": "samia.evaluate.summary",
    "headline": "samia.evaluate.summary",
    "summarize": "samia.evaluate.summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'samia.evaluate' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
