"""``--backend auto``, every command's default: the fastest installed backend runs, the output says
which, the run records it, and a resumed run keeps the backend it recorded."""

from __future__ import annotations

import inspect

import pytest
import yaml

import samia
from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, evaluate
from samia.finetuning.config import FinetuneConfig
from samia.models.exported import fastest_backend
from samia.models.settings import ModelSettings


@pytest.fixture(autouse=True)
def _export_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SAMIA_CACHE", str(tmp_path_factory.getbasetemp() / "samia-cache"))


def test_auto_is_the_first_installed_of_the_fastest_first(monkeypatch) -> None:
    import samia.models.exported

    assert fastest_backend() == "onnxruntime"  # installed with samia[test]
    assert fastest_backend("cuda") == "torch" and fastest_backend(precision="bf16") == "openvino"
    monkeypatch.setitem(samia.models.exported._PACKAGES, "onnxruntime", "onnxruntime_not_installed_here")
    assert fastest_backend() == "openvino"
    monkeypatch.setitem(samia.models.exported._PACKAGES, "openvino", "openvino_not_installed_here")
    assert fastest_backend() == "torch"
    assert ModelSettings("tiny_sam").resolved().backend == "torch"


def test_every_model_command_defaults_to_auto() -> None:
    from samia.cli.annotate import annotate_command
    from samia.cli.evaluate import evaluate_command
    from samia.cli.segment import segment_command

    for command in (segment_command, evaluate_command, annotate_command):
        assert inspect.signature(command).parameters["backend"].default == "auto" == ModelSettings().backend


def test_segment_says_which_backend_ran(cli, phantom_2d, tmp_path) -> None:
    image = sorted((phantom_2d / "images").iterdir())[0]
    for given, ran in ((["--backend", "auto"], "onnxruntime"), ([], "onnxruntime"), (["--backend", "torch"], "torch")):
        out = tmp_path / f"{ran}{len(given)}.png"
        code, stdout, stderr = cli(
            "segment", image, "--model", "tiny_sam", "--box", 20, 20, 60, 60, *given, "--out", out
        )
        assert code == 0, stderr
        assert stdout.rstrip().endswith(f"ran on {ran} (fp32)"), (given, stdout)


def _run(data, out, backend: str) -> samia.evaluation.EvaluationOutcome:
    model = ModelSettings("tiny_sam", backend=backend)
    return evaluate(EvaluationConfig(str(data), str(out), model, ["box"], limit=2))


def test_a_run_records_the_backend_that_ran_and_a_resumed_run_keeps_it(phantom_2d, tmp_path) -> None:
    fresh = _run(phantom_2d, tmp_path / "auto", "auto")
    assert fresh.model.backend == "onnxruntime" and fresh.units_run == 2
    recorded = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())["config"]["model"]
    assert recorded["backend"] == "onnxruntime"

    on_torch = _run(phantom_2d, tmp_path / "torch", "torch")
    resumed = _run(phantom_2d, tmp_path / "torch", "auto")  # auto here would be onnxruntime
    assert resumed.model.backend == "torch" and (resumed.units_run, resumed.units_skipped) == (0, 2)
    assert resumed.results.equals(on_torch.results)
    with pytest.raises(ConfigurationError, match="backend: 'torch' -> 'openvino'"):
        _run(phantom_2d, tmp_path / "torch", "openvino")  # asked for another backend: another run


def test_training_runs_on_torch_when_left_to_auto(phantom_2d, tmp_path) -> None:
    config = FinetuneConfig(str(phantom_2d), str(tmp_path / "ft"), ModelSettings("tiny_sam"))
    assert config.model.backend == "torch"
    with pytest.raises(ConfigurationError, match="models train on the torch backend, not onnxruntime"):
        FinetuneConfig(str(phantom_2d), str(tmp_path / "ft"), ModelSettings("tiny_sam", backend="onnxruntime"))
