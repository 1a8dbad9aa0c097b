"""Fine-tuning validation prompts an object exactly as ``samia evaluate`` does (same seeds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samia.data import build_manifest
from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, evaluate
from samia.finetuning import FinetuneConfig
from samia.finetuning.data import load_training_images
from samia.finetuning.validation import validation_prompts
from samia.models import build_model
from samia.prompts import get_strategy


def test_validation_prompts_equal_evaluations_for_a_random_strategy(phantom_train, tmp_path, make_config):
    """``box_jitter`` is random: only the same per-object seeding gives the same boxes."""
    config = make_config(seed=3)
    images = load_training_images(build_manifest(phantom_train), build_model("tiny_sam"), config, phantom_train)
    strategy = get_strategy("box_jitter")
    ours = {}
    for image in images:
        for index, prompt in validation_prompts(image, strategy, config.seed):
            label, _ = image.identities[index]
            ours.setdefault((image.case_id, label), []).append(prompt.box.tolist())
    rows = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(phantom_train),
                out=str(tmp_path / "eval"),
                model="tiny_sam",
                seed=3,
                strategies=["box_jitter"],
                selections=["single"],
            )
        )
    ).results.sort_values(["case", "label", "variant"])
    theirs = {}
    for row in rows.itertuples():
        theirs.setdefault((row.case, row.label), []).append(json.loads(row.prompt)["box"])
    assert ours.keys() == theirs.keys() and len(ours) >= 5
    for key, boxes in ours.items():
        np.testing.assert_allclose(boxes, theirs[key])


def test_clicks_and_everything_are_refused_as_validation_strategies_at_configuration(phantom_train, tmp_path):
    for name in ("clicks", "everything", "no_such_strategy"):
        with pytest.raises(ConfigurationError, match=name):
            FinetuneConfig.from_dict(
                dict(data=str(phantom_train), out=str(tmp_path / "o"), model="tiny_sam", val_strategies=[name])
            )
