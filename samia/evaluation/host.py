"""What the strategy families of an evaluation need of the case evaluator that runs them.

:class:`~samia.evaluation.runner.CaseEvaluator` satisfies :class:`EvaluatorHost`; the slice
families (:mod:`samia.evaluation.slice_rows`) and the volume unit (:mod:`samia.evaluation.volumes`)
see only this, so neither imports the runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from samia.evaluation.config import EvaluationConfig
from samia.evaluation.progress import ProgressHooks
from samia.evaluation.replay import PromptBook
from samia.models.interface import Segmenter
from samia.predictor import SamiaPredictor
from samia.prompts import PromptStrategy
from samia.transforms import IntensityPreset


class EvaluatorHost(Protocol):
    """One model evaluating the cases of one run.

    Attributes:
        config: the run.
        model: the loaded model.
        predictor: its predictor (embedding cache, batched decoding).
        progress: callbacks for units and prompt decodings.
        out: the run's results folder (saved masks go under it).
        fixed_preset: the intensity preset every image is read with; None: chosen per image.
        book: recorded prompts replayed instead of drawing new ones; None: draw them.
        strategies: the slice strategies of the run (static, clicks, everything).
        volume_strategies: the names of the run's volume strategies.
    """

    config: EvaluationConfig
    model: Segmenter
    predictor: SamiaPredictor
    progress: ProgressHooks
    out: Path
    fixed_preset: IntensityPreset | None
    book: PromptBook | None
    strategies: list[PromptStrategy]
    volume_strategies: list[str]
