"""Evaluation: plan (config), runner, crash-safe results store, summaries."""

from samia.evaluate.config import SELECTIONS, EvaluationConfig
from samia.evaluate.runner import EvaluationOutcome, evaluate, object_rng
from samia.evaluate.store import ResultsStore
from samia.evaluate.summary import everything_instances, headline, summarize

__all__ = [
    "SELECTIONS",
    "EvaluationConfig",
    "EvaluationOutcome",
    "ResultsStore",
    "evaluate",
    "everything_instances",
    "headline",
    "object_rng",
    "summarize",
]
