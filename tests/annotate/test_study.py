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
