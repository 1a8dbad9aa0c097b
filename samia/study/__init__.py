"""Learning curves: which fine-tuning method, and how many annotated cases (``samia finetune-study``).

Typical use::

    from samia.models import ModelSettings
    from samia.study import StudyConfig, run_study

    outcome = run_study(StudyConfig("DATA", "runs/study", ModelSettings("litemedsam"),
                                    methods=["decoder", "lora+decoder", "ssam"], cases=[1, 2, 4, 8]))
    outcome.curve  # held-out Dice per method and number of training cases (mean, 95% interval)

On a multi-rater dataset (:mod:`samia.data.raters`) the runs are scored by GED against the raters
instead (:data:`samia.study.curves.GED`): the zero-shot model and the deterministic methods with
``StudyConfig.samplers``, ``ua_adapter`` runs with their latent samples.

The study folder::

    study.yaml            the configuration and the split (test, validation, pool; data SHA-256)
    zero_shot/            samia evaluate of the base model on the test cases
    runs/LABEL/nNNN_rR/   one run: finetune/ (samia finetune), test/ (samia evaluate), run.yaml
                          (its record, written last) or error.json (its last failure)
    runs.csv, curve.csv, errors.csv, learning_curve.png   (see samia.study.curves)

:mod:`samia.study.plan` says how cases are split and subsets drawn; :mod:`samia.study.runner`
how runs execute and resume.
"""

from samia.study.config import StudyConfig, StudyMethod
from samia.study.runner import STUDY_FILE, StudyOutcome, StudyProgress, run_study

__all__ = ["STUDY_FILE", "StudyConfig", "StudyMethod", "StudyOutcome", "StudyProgress", "is_study_folder", "run_study"]


def is_study_folder(folder: str) -> bool:
    """A folder written by :func:`run_study` (it holds ``study.yaml``)."""
    from pathlib import Path

    return (Path(folder) / STUDY_FILE).is_file()
