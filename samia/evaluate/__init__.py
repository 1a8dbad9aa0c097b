"""Evaluation: plan (config), runner, crash-safe results store, summaries, prompt replay.

Names are imported on first use (PEP 562), so ``samia.evaluate.summary`` and friends load without
the model stack (torch) that the runner needs.
"""

from samia.lazy import lazy_exports

_EXPORTS = {
    "SELECTIONS": "samia.selection",
    "EvaluationConfig": "samia.evaluate.config",
    "EvaluationOutcome": "samia.evaluate.driver",
    "evaluate": "samia.evaluate.driver",
    "ProgressHooks": "samia.evaluate.progress",
    "ResultsStore": "samia.evaluate.store",
    "everything_instances": "samia.evaluate.summary",
    "headline": "samia.evaluate.summary",
    "summarize": "samia.evaluate.summary",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
