"""The public Python API as a notebook uses it: 2D and 3D segmentation, a small evaluation and its
report, through ``samia.*`` alone; and the docstring examples run as doctests."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import samia
import samia.segmentation
from samia.data import sample_dataset_path
from samia.errors import ConfigurationError


def test_the_docstring_examples_run() -> None:
    for module in (samia, samia.segmentation):
        failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0 and failed == 0, module.__name__


def test_a_notebook_segments_a_real_slice_and_reuses_the_loaded_model() -> None:
    from PIL import Image

    root = sample_dataset_path("colin27_aal_2d")
    path = sorted((root / "images").iterdir())[0]
    truth = np.asarray(Image.open(root / "masks" / path.name))
    predictor = samia.SamiaPredictor(samia.load_model("litemedsam"))
    value = int(np.bincount(truth[truth > 0]).argmax())
    ys, xs = np.nonzero(truth == value)
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    result = samia.segment(path, samia.Prompt(box=box), model=predictor)
    overlap = (result.masks[0] & (truth == value)).sum() * 2 / (result.masks[0].sum() + (truth == value).sum())
    assert result.masks.shape == (1, *truth.shape) and overlap > 0.7  # LiteMedSAM's boxes work on these
    assert result.probabilities.shape == result.masks.shape and ((result.probabilities > 0.5) == result.masks).all()
    assert result.grid.path == str(path) and result.preset.name
    again = samia.segment(result.grid, samia.Prompt(box=box), model=predictor)  # same image: no second encoding
    assert predictor.encoder_calls == 1 and (again.masks == result.masks).all()
    with pytest.raises(ConfigurationError, match="needs its spacing in mm"):
        samia.segment(np.zeros((32, 32)), samia.Prompt(box=np.array([1, 1, 9, 9])), model=predictor)


def test_a_notebook_segments_a_volume_and_a_slice_of_it() -> None:
    from samia.volume import Box3D

    array = np.full((12, 48, 48), -50.0, np.float32)
    array[3:9, 14:34, 16:36] = 80.0
    volume = samia.Volume(array, spacing=(2.5, 0.8, 0.8), modality="CT")
    prompt = samia.VolumePrompt(box3d=Box3D.from_values([16, 14, 3, 35, 33, 8], volume.shape, "volume"))
    predictor = samia.SamiaPredictor(samia.load_model("tiny_sam"))
    result = samia.segment(volume, prompt, model=predictor)
    assert result.masks.shape == (1, 12, 48, 48) and result.probabilities is None and result.grid is volume
    assert not result.masks[0, :3].any() and not result.masks[0, 9:].any()  # never outside the box's slices
    assert result.label_map().shape == volume.shape
    run = result.propagation  # the record `samia segment --box3d` reports
    assert run is not None and 1 <= run.slices_encoded <= 6 and (run.objects[0].mask == result.masks[0]).all()
    on_slice = samia.segment(volume, samia.Prompt(box=np.array([16, 14, 35, 33])), model=predictor, slice_index=5)
    assert on_slice.masks.shape == (1, 48, 48) and on_slice.grid.spacing == (0.8, 0.8)
    assert on_slice.propagation is None and on_slice.probabilities is not None
    placed = on_slice.placed(on_slice.masks[0], volume, 5)
    assert placed.shape == volume.shape and (placed[5] == on_slice.masks[0]).all() and not placed[4].any()
    with pytest.raises(ConfigurationError, match="choose a slice for 2D prompts"):
        samia.segment(volume, samia.Prompt(box=np.array([16, 14, 35, 33])), model=predictor)


def test_a_notebook_evaluates_and_reports(phantom_2d, tmp_path) -> None:
    config = samia.EvaluationConfig(
        str(phantom_2d),
        str(tmp_path / "run"),
        samia.ModelSettings("tiny_sam"),
        ["box", "point1"],
        reading=samia.CaseSettings(min_area=20),
        limit=3,
    )
    outcome = samia.evaluate(config)
    assert set(outcome.results["strategy"]) == {"box", "point1"} and outcome.results["case"].nunique() == 3
    report = samia.report([tmp_path / "run"], tmp_path / "report", n_resamples=100, n_cases=0)
    assert report.html.is_file()
    comparisons = pd.read_csv(tmp_path / "report" / "tables" / "compare_strategies.csv")
    assert (comparisons["n"] == 3).all() and comparisons["p_withheld"].all()  # 3 cases: no p-value
