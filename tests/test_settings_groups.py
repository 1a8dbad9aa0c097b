"""The settings groups (samia.settings_groups): one serialisation, one default per option, flat
names unique within a run, unknown names refused, and the command line's defaults the groups'."""

import inspect

import pytest

from samia.cli.evaluate import evaluate_command
from samia.cli.finetune import finetune_command
from samia.cli.finetune_study import finetune_study_command
from samia.data.settings import CaseSettings
from samia.errors import ConfigurationError
from samia.evaluation.config import EvaluationConfig
from samia.finetuning.config import FinetuneConfig, TrainingSettings
from samia.models.settings import ModelSettings
from samia.settings_groups import SettingsGroup, _fields
from samia.study.config import StudyConfig

RUNS = [EvaluationConfig, FinetuneConfig, StudyConfig]
CLI_NAMES = {"nsd_tolerance": "nsd_tolerance_mm", "embedding_cache": "embedding_cache_dir"}
"""Command-line parameters whose option has another name in the records."""


def _leaf_names(cls: type[SettingsGroup]) -> list[str]:
    names = []
    for name, group in _fields(cls):
        names.extend(_leaf_names(group) if group is not None else [cls.FLAT_NAMES.get(name, name)])
    return names


@pytest.mark.parametrize("run", RUNS)
def test_every_option_of_a_run_has_one_flat_name(run) -> None:
    names = _leaf_names(run)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize(
    ("command", "run"),
    [(evaluate_command, EvaluationConfig), (finetune_command, FinetuneConfig), (finetune_study_command, StudyConfig)],
)
def test_the_command_line_defaults_are_the_groups_defaults(command, run) -> None:
    defaults = run.flat_defaults()
    compared = 0
    for parameter in inspect.signature(command).parameters.values():
        option = CLI_NAMES.get(parameter.name, parameter.name)
        if parameter.default is inspect.Parameter.empty or option not in defaults:
            continue
        given = parameter.default
        assert given == defaults[option], (option, given)
        compared += 1
    assert compared >= 8


def test_a_nested_and_a_flat_record_make_the_same_run(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    nested = FinetuneConfig(
        str(tmp_path / "data"),
        str(tmp_path / "out"),
        ModelSettings("tiny_sam", device="cpu"),
        method="lora",
        reading=CaseSettings(axis=2, min_area=7),
        training=TrainingSettings(epochs=3, lora_rank=2),
    )
    record = nested.to_dict()
    assert record["model"] == {**ModelSettings(backend="torch").to_dict(), "name": "tiny_sam"}  # training: torch
    assert record["training"]["lora_rank"] == 2 and "lora_rank" not in record
    assert FinetuneConfig.from_dict(record) == nested
    assert FinetuneConfig.from_dict(nested.flat()) == nested
    flat = nested.flat()
    assert flat["model"] == "tiny_sam" and flat["axis"] == 2 and flat["epochs"] == 3


def test_an_unknown_option_is_refused_by_name(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) min_aera for EvaluationConfig"):
        EvaluationConfig.from_dict(
            {
                "data": str(tmp_path),
                "out": str(tmp_path / "o"),
                "model": "tiny_sam",
                "strategies": ["box"],
                "min_aera": 5,
            }
        )


def test_a_group_refuses_a_bad_value_where_it_is_made() -> None:
    with pytest.raises(ConfigurationError, match="unknown input pipeline 'nope'"):
        ModelSettings("tiny_sam", input_pipeline="nope")
    with pytest.raises(ConfigurationError, match="min-area must be >= 0"):
        CaseSettings(min_area=-1)
    with pytest.raises(ConfigurationError, match="epochs must be >= 1"):
        TrainingSettings(epochs=0)


def test_min_area_has_one_default_whatever_the_run(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    evaluation = EvaluationConfig(data, out, ModelSettings("tiny_sam"), ["box"])
    training = FinetuneConfig(data, out, ModelSettings("tiny_sam"))
    study = StudyConfig(data, out, ModelSettings("tiny_sam"), ["decoder"], [1])
    assert evaluation.reading.min_area == training.reading.min_area == study.reading.min_area == 50


def test_every_command_that_runs_a_model_defaults_to_the_settings_model() -> None:
    from samia.cli.annotate import annotate_command
    from samia.cli.segment import segment_command

    commands = [segment_command, evaluate_command, finetune_command, finetune_study_command, annotate_command]
    defaults = {command.__name__: inspect.signature(command).parameters["model"].default for command in commands}
    assert set(defaults.values()) == {ModelSettings().name}, defaults
    assert ModelSettings().name == "litemedsam"  # the model whose weights ship with the dependencies
