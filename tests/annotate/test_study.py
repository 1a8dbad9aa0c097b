"""The annotation study: a scripted annotator (click-simulation rules on the session engine) makes an
assisted and a manual folder of the same objects; the per-object rows are checked against the log
and the effort model, the accepted masks against the ground truth, and ``samia report`` writes the
paired comparison."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_app import write_dataset

from samia.annotate import read_log
from samia.annotate.scripted import Effort, annotate_scripted
from samia.annotate.timing import IDLE_SECONDS, active_seconds, object_rows
from samia.models import build_model

EFFORT = Effort(start=2.0, box=3.0, click=1.25, vertex=0.5, accept=1.0)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    data = write_dataset(root / "data")
    (data / "images" / "zz_corrupt.png").unlink()
    assisted = annotate_scripted(data, root / "assisted", build_model("tiny_sam"), "tiny_sam", effort=EFFORT)
    manual = annotate_scripted(data, root / "manual", None, effort=EFFORT)
    return data, assisted, manual


def test_manual_rows_follow_the_effort_model_and_match_the_ground_truth(study) -> None:
    data, _, manual = study
    rows = object_rows(manual)
    assert list(rows["case"]) == ["case_a", "case_b"] and set(rows["mode"]) == {"manual"}  # unlabelled is skipped
    for row in rows.itertuples():
        polygon = next(e for e in read_log(manual) if e["case"] == row.case and e["kind"] == "polygon")
        vertices = len(polygon["coords"]) // 2
        assert row.active_s == pytest.approx(EFFORT.start + EFFORT.vertex * vertices + EFFORT.accept)
        assert (row.clicks, row.boxes, row.strokes, row.interactions) == (0, 0, 1, 1)
        assert row.first_mask_accepted is None or pd.isna(row.first_mask_accepted)
        saved = np.asarray(Image.open(manual / row.case / "labels.png")) == row.object
        truth = np.asarray(Image.open(data / "masks" / f"{row.case}.png")) == 1
        dice = 2 * (saved & truth).sum() / (saved.sum() + truth.sum())
        assert row.dice == pytest.approx(dice) and row.dice > 0.9 and row.gt_label == 1


def test_assisted_rows_count_what_the_log_says(study) -> None:
    _, assisted, _ = study
    rows = object_rows(assisted)
    events = read_log(assisted)
    for row in rows.itertuples():
        mine = [e for e in events if e["case"] == row.case and e["object"] == row.object]
        assert row.clicks == sum(e["kind"] == "point" for e in mine) and row.boxes == 1
        assert row.undos == sum(e["kind"] == "undo" for e in mine)
        # active time, re-derived: every gap of the case's events that ends in this object's event
        stream = [e for e in events if e["case"] == row.case]
        expected = sum(
            min(b["time"] - a["time"], IDLE_SECONDS)
            for a, b in zip(stream, stream[1:])
            if b["object"] == row.object and b["kind"] != "open"
        )
        assert row.active_s == pytest.approx(expected)
        accept = next(e for e in mine if e["kind"] == "accept")
        # the box's answer taken as it was: no click, or every click taken back
        assert row.first_mask_accepted == (row.clicks == row.undos)
        assert accept["details"]["first_mask"] == row.first_mask_accepted
        assert np.isfinite(row.model_latency_ms) and 0 <= row.dice <= 1


def test_idle_gaps_count_up_to_the_limit_and_reopening_counts_nothing() -> None:
    stream = [
        {"time": 0.0, "object": 0, "kind": "open"},
        {"time": 2.0, "object": 1, "kind": "new_object"},
        {"time": 500.0, "object": 1, "kind": "point"},  # away for a while
        {"time": 9000.0, "object": 1, "kind": "open"},  # the next day
        {"time": 9003.0, "object": 1, "kind": "accept"},
    ]
    assert active_seconds(stream) == {1: 2.0 + IDLE_SECONDS + 3.0}


def test_report_pairs_assisted_and_manual_objects(study, cli, tmp_path) -> None:
    _, assisted, manual = study
    code, stdout, stderr = cli("report", assisted, manual, "--out", tmp_path / "report", "--resamples", "200")
    assert code == 0, stderr
    paired = pd.read_csv(tmp_path / "report" / "tables" / "annotation_paired.csv")
    assert list(paired["measure"]) == ["active time (s)", "interactions", "Dice", "NSD"]
    objects = pd.read_csv(tmp_path / "report" / "tables" / "annotation_objects.csv")
    a = objects[objects["mode"] == "assisted"].set_index("case")
    m = objects[objects["mode"] == "manual"].set_index("case")
    time_row = paired.set_index("measure").loc["active time (s)"]
    assert time_row["n"] == 2
    assert time_row["mean_difference"] == pytest.approx((a["active_s"] - m["active_s"]).mean())
    summary = pd.read_csv(tmp_path / "report" / "tables" / "annotation_summary.csv")
    assert set(summary["mode"]) == {"assisted", "manual"}
    assert (tmp_path / "report" / "figures" / "annotation_time.png").stat().st_size > 5000
    html = (tmp_path / "report" / "report.html").read_text()
    assert "SAM-assisted vs manual" in html and "assisted" in stdout
    assert json.loads((assisted / "annotation.json").read_text())["mode"] == "assisted"


@pytest.fixture(scope="module")
def two_raters(tmp_path_factory):
    """Two named raters drawn by the scripted annotator from their own masks of rater phantoms."""
    from samia.data.rater_phantoms import write_rater_dataset

    root = tmp_path_factory.mktemp("raters")
    data = write_rater_dataset(root / "data", 3, seed=5)
    model = build_model("tiny_sam")
    folders = {
        rater: annotate_scripted(
            data, root / rater, model, "tiny_sam", effort=EFFORT, rater=rater, truth=data / "raters" / rater
        )
        for rater in ("generous", "exact_without_lobe")
    }
    return data, model, folders


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 if not (a.any() or b.any()) else 2 * (a & b).sum() / (a.sum() + b.sum())


def test_a_rater_folder_keeps_its_rater_and_the_models_first_answer(two_raters, tmp_path) -> None:
    from samia.annotate.log import study_rater
    from samia.errors import ConfigurationError
    from samia.io import read_image
    from samia.predictor import SamiaPredictor
    from samia.prompts.primitives import tight_box
    from samia.transforms import preset_for, to_rgb_uint8
    from samia.types import Prompt

    data, model, folders = two_raters
    assert {study_rater(folder) for folder in folders.values()} == {"generous", "exact_without_lobe"}
    with pytest.raises(ConfigurationError, match="holds the annotations of rater 'generous', not of rater 'someone'"):
        annotate_scripted(data, folders["generous"], model, rater="someone")
    with pytest.raises(ConfigurationError, match="not a plain name"):
        annotate_scripted(data, tmp_path / "bad", model, rater="../x")
    # the model's first answer is its answer to the box the rater drew first, before any click
    truth = np.asarray(Image.open(data / "raters" / "generous" / "phantom_000.png")) > 0
    image = read_image(data / "images" / "phantom_000.png")
    predictor = SamiaPredictor(model)
    predictor.set_image(to_rgb_uint8(image, preset_for(image)))
    expected = predictor.predict(Prompt(box=tight_box(truth).astype(np.float64)), multimask_output=False).masks[0]
    answers = np.asarray(Image.open(folders["generous"] / "phantom_000" / "model_answers.png"))
    np.testing.assert_array_equal(answers == 1, expected)


def test_the_report_sets_inter_rater_beside_model_rater_dice(two_raters, tmp_path) -> None:
    from samia.analysis.annotation import build_annotation_report

    _, _, folders = two_raters
    report = build_annotation_report(list(folders.values()), tmp_path / "report", n_resamples=200)
    raters = report.raters
    assert list(raters["case"]) == ["phantom_000", "phantom_001", "phantom_002"]
    a, b = folders["exact_without_lobe"], folders["generous"]  # sorted by name, as the table
    for row in raters.itertuples():
        assert row.raters == "exact_without_lobe, generous" and row.n_raters == 2
        mask_a = np.asarray(Image.open(a / row.case / "labels.png")) == 1
        mask_b = np.asarray(Image.open(b / row.case / "labels.png")) == 1
        model_a = np.asarray(Image.open(a / row.case / "model_answers.png")) == 1
        model_b = np.asarray(Image.open(b / row.case / "model_answers.png")) == 1
        assert row.inter_rater_dice == pytest.approx(_dice(mask_a, mask_b))
        assert row.model_rater_dice == pytest.approx((_dice(model_a, mask_b) + _dice(model_b, mask_a)) / 2)
        assert row.model_own_dice == pytest.approx((_dice(model_a, mask_a) + _dice(model_b, mask_b)) / 2)
    assert raters["inter_rater_dice"].lt(1).all()  # one rater includes the lobe, the other does not
    html = report.html.read_text()
    assert "inter-rater and model-rater Dice" in html and "model-rater minus inter-rater Dice" in html
