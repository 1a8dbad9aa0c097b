"""Records written by samia 0.1 before run options were grouped (tests/fixtures/legacy_0_1) still
load with every option's value, and the evaluation run interrupted then resumes with 0 rows lost or
duplicated. Embedding-cache keys are those of 0.1 (a cache filled before keeps its hits)."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import samia
from samia.embeddings import embedding_key
from samia.evaluation.config import read_run_document
from samia.finetuning.config import read_run_config
from samia.study.config import read_study_file

LEGACY = Path(__file__).parent / "fixtures" / "legacy_0_1"
MADE_IN = "/tmp/legacy"
ROW_KEY = ["case", "slice", "label", "component", "strategy", "variant", "selection"]


def _moved(tmp_path: Path) -> Path:
    """The legacy records copied under ``tmp_path``, their paths pointing there."""
    root = tmp_path / "legacy"
    shutil.copytree(LEGACY, root)
    for record in [root / "run" / "config.yaml", root / "finetune.yaml", root / "study.yaml"]:
        record.write_text(record.read_text().replace(MADE_IN, str(root)))
    return root


def _old_options(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["config"]


UA_OPTIONS = ("latent_dim", "latent_blocks", "kl_weight", "val_samples")
"""The ua_adapter's training options (issue 31)."""

STUDY_RATER_OPTIONS = ("samplers", "samples")
"""A study's samplers on multi-rater data (issue 31)."""


@pytest.mark.parametrize(
    ("record", "read", "new_options"),
    [
        ("run/config.yaml", lambda p: read_run_document(p)[0], {"stability_score_offset"}),
        ("finetune.yaml", lambda p: read_run_config(p)[0], {"backend", "precision", "input_pipeline", *UA_OPTIONS}),
        (
            "study.yaml",
            lambda p: read_study_file(p)[0],
            {"backend", "precision", "input_pipeline", *STUDY_RATER_OPTIONS},
        ),
    ],
)
def test_a_flat_record_of_0_1_loads_with_every_option_and_its_value(record, read, new_options, tmp_path) -> None:
    path = _moved(tmp_path) / record
    old = _old_options(path)
    config = read(path)
    flat = config.flat()
    assert {name: flat[name] for name in old} == old  # every option kept its value
    assert set(flat) - set(old) == new_options  # options added since, at their one default
    assert type(config).from_dict(config.to_dict()) == config  # the nested record reads back the same
    assert type(config).from_dict(flat) == config


def test_the_run_interrupted_under_0_1_resumes_with_no_row_lost_or_duplicated(tmp_path) -> None:
    root = _moved(tmp_path)
    stored = pd.read_parquet(root / "run" / "results.parquet")
    assert stored["case"].nunique() == 2  # interrupted: 2 of the 3 cases done

    def config(out: Path) -> samia.EvaluationConfig:
        return samia.EvaluationConfig(
            str(root / "data"),
            str(out),
            samia.ModelSettings("tiny_litemedsam"),
            ["box", "point1"],
            reading=samia.CaseSettings(min_area=20),
            surface=samia.SurfaceSettings(nsd_tolerance_mm=1.5),
            prompting=samia.PromptSettings(jitter_repeats=2),
        )

    resumed = samia.evaluate(config(root / "run"))
    assert (resumed.units_skipped, resumed.units_run) == (2, 1)
    assert not resumed.results.duplicated(ROW_KEY).any()
    fresh = samia.evaluate(config(tmp_path / "fresh"))
    assert sorted(map(tuple, resumed.results[ROW_KEY].values)) == sorted(map(tuple, fresh.results[ROW_KEY].values))
    kept = resumed.results[resumed.results["case"].isin(stored["case"])]
    columns = ["dice", "nsd", "hd95", "pred_area"]
    pd.testing.assert_frame_equal(  # the rows of 0.1 are kept as they were written, not recomputed
        kept.sort_values(ROW_KEY)[ROW_KEY + columns].reset_index(drop=True),
        stored.sort_values(ROW_KEY)[ROW_KEY + columns].reset_index(drop=True),
    )
    rewritten = read_run_document(root / "run" / "config.yaml")[0]
    assert rewritten.model.backend == "torch"  # --backend auto resumed the backend 0.1 recorded
    asked = config(root / "run")
    assert rewritten == replace(asked, model=replace(asked.model, backend="torch"))  # config.yaml now nested, same run


def test_embedding_cache_keys_are_those_of_0_1() -> None:
    image = (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(64, 48, 3)
    key = embedding_key(samia.load_model("tiny_litemedsam"), image)
    assert key == "d308ccb1dcb2c6ec37902ef51b3c06f35796d66094ebb505204d16fa1c1dd91d"  # computed by samia 0.1.0
