"""Class 3: impossible prompts are refused (file, line, value), never scored; odd grids refused."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hostile_files import folder_dataset, one_error_line, square_case

from samia.embeddings import EmbeddingCache, embedding_key
from samia.errors import GeometryMismatchError, InputError
from samia.evaluation import EvaluationConfig, evaluate
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt


@pytest.fixture
def data(tmp_path):
    return folder_dataset(tmp_path / "data", {"c0": square_case(0), "c1": square_case(1)})


@pytest.mark.parametrize(
    ("points", "labels", "box", "problem"),
    [
        ([[np.nan, 3.0]], [1], None, "finite"),
        ([[3.0, 3.0]], [2], None, "1 (positive) or 0"),
        (None, None, [1.0, np.inf, 5.0, 6.0], "finite"),
        (None, None, [9.0, 1.0, 2.0, 6.0], "x0 <= x1"),
    ],
)
def test_prompt_refuses_impossible_values(points, labels, box, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        Prompt(points=None if points is None else np.array(points), labels=labels, box=box)


def test_prompts_off_the_image_are_refused_and_partly_outside_boxes_clipped():
    shape = (40, 50)
    with pytest.raises(ValueError, match="outside the 50 x 40 image"):
        Prompt(points=np.array([[60.0, 3.0]]), labels=np.array([1])).fitted_to(shape)
    with pytest.raises(ValueError, match="entirely outside"):
        Prompt(box=np.array([-30.0, -30.0, -5.0, -2.0])).fitted_to(shape)
    clipped = Prompt(box=np.array([-5.0, 10.0, 70.0, 20.0])).fitted_to(shape)
    assert clipped.box.tolist() == [0.0, 10.0, 49.0, 20.0] and clipped.meta["box_clipped"] is True
    predictor = SamiaPredictor(build_model("tiny_sam"))
    predictor.set_image(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(ValueError, match="entirely outside"):
        predictor.predict(Prompt(box=np.array([-30.0, -30.0, -5.0, -2.0])))


@pytest.mark.parametrize(
    ("box", "fragment"),
    [
        (["-20", "-20", "-5", "-5"], "entirely outside"),
        (["nan", "1", "5", "5"], "finite"),
        (["9", "1", "2", "5"], "x0 <= x1"),
    ],
)
def test_segment_refuses_impossible_boxes_in_one_line(data, tmp_path, cli, box, fragment):
    image = data / "images" / "c0.png"
    code, _, stderr = cli("segment", image, "--model", "tiny_sam", "--box", *box, "--out", tmp_path / "m.png")
    line = one_error_line(stderr)
    assert code == 2 and "c0.png" in line and fragment in line
    assert not (tmp_path / "m.png").exists()


def _prompts_file(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record(case="c0", box=(12, 10, 43, 39), label=1):
    return {
        "case": case,
        "slice": -1,
        "label": label,
        "component": -1,
        "strategy": "box",
        "variant": 0,
        "selection": None,
        "points": None,
        "labels": None,
        "box": list(box),
        "meta": {},
    }


def test_a_prompts_file_naming_a_missing_case_is_refused_with_its_line(data, tmp_path, cli):
    prompts = _prompts_file(tmp_path / "p.jsonl", [_record(), _record(case="../../etc/passwd")])
    code, _, stderr = cli(
        "evaluate", "--data", data, "--model", "tiny_sam", "--prompts", prompts, "--out", tmp_path / "r"
    )
    line = one_error_line(stderr)
    assert code == 2 and "p.jsonl" in line and "line 2" in line and "../../etc/passwd" in line


def test_a_prompts_file_with_nan_or_bad_labels_is_refused_with_its_line(data, tmp_path):
    (tmp_path / "nan.jsonl").write_text(
        json.dumps(_record()) + "\n" + json.dumps(_record()).replace("12,", "NaN,") + "\n"
    )
    with pytest.raises(InputError, match="line 2"):
        evaluate(
            EvaluationConfig.from_dict(
                dict(
                    data=str(data),
                    out=str(tmp_path / "r1"),
                    model="tiny_sam",
                    strategies=[],
                    prompts_file=str(tmp_path / "nan.jsonl"),
                )
            )
        )
    bad = dict(_record(), points=[[20, 20]], labels=[3], box=None)
    _prompts_file(tmp_path / "labels.jsonl", [bad])
    with pytest.raises(InputError, match="line 1.*1 \\(positive\\) or 0"):
        evaluate(
            EvaluationConfig.from_dict(
                dict(
                    data=str(data),
                    out=str(tmp_path / "r2"),
                    model="tiny_sam",
                    strategies=[],
                    prompts_file=str(tmp_path / "labels.jsonl"),
                )
            )
        )


def test_boxes_outside_the_image_in_a_prompts_file_are_never_scored(data, tmp_path):
    prompts = _prompts_file(tmp_path / "p.jsonl", [_record(), _record(case="c1", box=(200, 200, 240, 230))])
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(data), out=str(tmp_path / "r"), model="tiny_sam", strategies=[], prompts_file=str(prompts))
        )
    )
    assert set(outcome.results["case"]) == {"c0"}
    (error,) = outcome.errors.itertuples()
    assert error.case == "c1" and "p.jsonl line 2" in error.message and "entirely outside" in error.message


def test_replayed_clicks_off_the_image_are_refused_with_their_line(data, tmp_path):
    clicks = dict(_record(), strategy="clicks", selection="oracle", box=None, points=[[20, 20], [90, 5]], labels=[1, 0])
    prompts = _prompts_file(tmp_path / "p.jsonl", [clicks])
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(
                data=str(data),
                out=str(tmp_path / "r"),
                model="tiny_sam",
                strategies=[],
                prompts_file=str(prompts),
                selections=["oracle"],
            )
        )
    )
    assert outcome.results.empty
    (error,) = outcome.errors.itertuples()
    assert error.case == "c0" and "p.jsonl line 1" in error.message and "[90.0, 5.0]" in error.message


def test_prompts_jsonl_is_strict_json(data, tmp_path):
    evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(data), out=str(tmp_path / "r"), model="tiny_sam", strategies=["box", "point1"])
        )
    )
    for line in (tmp_path / "r" / "prompts.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))


def test_2d_image_and_mask_with_different_spacings_are_refused(tmp_path):
    import SimpleITK as sitk

    from samia.data import build_manifest, iter_slice_items

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    image, label = square_case(0)
    for array, path, spacing in ((image, "images/c.nii.gz", (0.5, 0.5)), (label, "masks/c.nii.gz", (1.0, 1.0))):
        written = sitk.GetImageFromArray(array)
        written.SetSpacing(spacing)
        sitk.WriteImage(written, str(tmp_path / path))
    (case,) = build_manifest(tmp_path)
    with pytest.raises(GeometryMismatchError, match="spacing"):
        next(iter_slice_items(case))


def test_an_embedding_cache_entry_of_the_wrong_shape_is_rebuilt(tmp_path):
    model = build_model("tiny_sam")
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    cache = EmbeddingCache(max_items=0, directory=tmp_path / "cache")
    cache.put(embedding_key(model, image), torch.zeros((1, 3, 5, 5)))  # a foreign entry under the key
    predictor = SamiaPredictor(model, cache)
    predictor.set_image(image)
    assert predictor.encoder_calls == 1 and tuple(predictor.image_embedding.shape) == predictor.embedding_shape


def test_a_prompts_file_that_is_not_utf8_is_refused_with_its_line(tmp_path):
    from samia.evaluation.replay import read_prompts_file

    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps(_record()).encode() + b"\n" + json.dumps(_record()).replace("box", "b\xf6x").encode("latin-1")
    )
    with pytest.raises(InputError, match=r"latin1\.jsonl: line 2 is not UTF-8 \(byte 0xf6\)"):
        read_prompts_file(path)
