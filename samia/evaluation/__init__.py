"""Evaluation: plan (config), runner, crash-safe results store, summaries, prompt replay.

Names are imported on first use (PEP 562), so ``samia.evaluation.summary`` and friends load without
the model stack (torch) that the runner needs.
"""

from samia.lazy import lazy_exports

_EXPORTS = {
    "SELECTIONS": "samia.selection",
    "EvaluationConfig": "samia.evaluation.config",
    "EvaluationOutcome": "samia.evaluation.driver",
    "evaluate": "samia.evaluation.driver",
    "ProgressHooks": "samia.evaluation.progress",
    "ResultsStore": "samia.evaluation.store",
    "everything_instances": "samia.evaluation.summary",
    "headline": "samia.evaluation.summary",
    "summarize": "samia.evaluation.summary",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
