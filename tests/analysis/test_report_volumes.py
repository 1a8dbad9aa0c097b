"""``samia report``'s 3D part on a real (tiny-model) volume run: volume Dice by strategy, Dice along the
volume by distance from the key slice, encoder calls per volume, and the click AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samia.analysis.report import build_report
from samia.analysis.results import load_results
from samia.analysis.tables import click_auc_table, slice_dice_curves, volume_cost_table
from samia.evaluation import EvaluationConfig, evaluate
from samia.metrics import click_auc


@pytest.fixture(scope="module")
def volume_run(phantom_3d, tmp_path_factory):
    out = tmp_path_factory.mktemp("volume_run") / "run"
    config = EvaluationConfig.from_dict(dict(
        data=str(phantom_3d), out=str(out), model="tiny_sam", strategies=["box", "box3d", "slice_boxes", "box3d_clicks"],
        max_clicks=3, selections=["single"],
    ))  # fmt: skip
    evaluate(config)
    return out


def test_the_report_has_a_3d_part(volume_run, tmp_path) -> None:
    outcome = build_report([volume_run], tmp_path / "report", n_resamples=200)
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Volumes (3D)" in markdown
    names = {path.name for path in outcome.figures}
    assert {"volume_dice_by_strategy.png", "dice_vs_key_distance.png", "volume_dice_vs_clicks.png"} <= names
    assert "Encoder calls per volume" in markdown and "area under the Dice and NSD" in markdown


def test_the_3d_tables_compute_what_they_say(volume_run) -> None:
    results = load_results([volume_run])
    volume = results[results["level"] == "volume"]
    cost = volume_cost_table(volume[volume["strategy"] != "box3d_clicks"])
    encoded = cost.set_index("strategy")["encoder_calls_per_volume"]
    assert (
        encoded["box3d"] + encoded["slice_boxes"]
        == volume["slices_encoded"].groupby(volume["strategy"]).max().drop("box3d_clicks").sum()
    )
    curves = slice_dice_curves(volume)
    assert len(curves) == sum(len(v) for v in volume["slice_dice"])
    clicks = volume[volume["strategy"] == "box3d_clicks"]
    table = click_auc_table(clicks)
    by_object = [
        click_auc(rows.sort_values("n_clicks")["dice"].to_numpy()[1:]) for _, rows in clicks.groupby(["case", "label"])
    ]
    assert table["dice_auc"].iloc[0] == pytest.approx(np.mean(by_object))
    assert table["objects"].iloc[0] == clicks[["case", "label"]].drop_duplicates().shape[0]
    assert isinstance(table, pd.DataFrame)
