"""``samia report`` on synthetic results: every part when the columns are there, notes when not."""

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from samia.analysis.report import build_report
from samia.cli.main import app
from samia.errors import ConfigurationError, MissingFileError

TABLES = {
    "runs",
    "headline",
    "compare_strategies",
    "compare_selections",
    "compare_models",
    "factor_correlations",
    "by_modality",
    "by_object",
    "targets",
}


def test_report_on_planted_results_has_every_part(planted_results, tmp_path):
    outcome = build_report([planted_results], tmp_path / "report", n_resamples=200)
    assert {p.stem for p in outcome.tables} == TABLES and {p.suffix for p in outcome.tables} == {".csv", ".md"}
    figures = {p.stem for p in outcome.figures}
    assert {"dice_by_strategy_CT", "dice_by_strategy_MR", "oracle_gap", "dice_vs_clicks", "dice_vs_jitter"} <= figures
    assert {"dice_vs_factors_tiny_sam_random", "dice_vs_factors_tiny_sam_f1e2d3c4"} <= figures
    assert sum(name.startswith("case_") for name in figures) == 2 * 4 * 2  # models x strategies x best/worst
    assert outcome.notes == [
        "16 overlay(s) show the ground truth and prompt only: their results were written by an earlier samia, "
        "which kept no masks in results.parquet (column mask_rle) and saved no files without --save-masks; "
        "evaluate again into a new --out folder to draw the predictions."
    ]

    html = outcome.html.read_text()
    assert html.count('src="data:image/png;base64,') == len(outcome.figures)
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # self-contained: nothing to fetch
    strategies = pd.read_csv(tmp_path / "report" / "tables" / "compare_strategies.csv")
    planted = strategies[(strategies["a"] == "point1") & (strategies["b"] == "box")]
    assert (planted["p_holm"] < 0.001).all() and (planted["ci_high"] < 0).all()
    correlations = pd.read_csv(tmp_path / "report" / "tables" / "factor_correlations.csv")
    assert (correlations.query("factor == 'contrast' and strategy == 'box'")["rho"] > 0.9).all()
    markdown = (tmp_path / "report" / "tables" / "headline.md").read_text()
    assert "| model | strategy | selection | cases | rows | Dice mean ± std |" in markdown
    assert "## Paired comparisons" in outcome.markdown.read_text()


def test_report_without_protocol_columns_says_what_it_left_out(planted, tmp_path):
    frame = planted.frame(protocol=False, fine_tuned=False, factors=False).drop(
        columns=["n_clicks", "jitter_band", "jitter_offset_px"]
    )
    folder = tmp_path / "plain"
    folder.mkdir()
    frame[frame["selection"] == "single"].to_parquet(folder / "results.parquet")
    outcome = build_report([folder], tmp_path / "report", n_resamples=200, n_cases=0)
    notes = " ".join(outcome.notes)
    for expected in (
        "comparison of selections",
        "comparison of models",
        "oracle and predicted_iou",
        "n_clicks",
        "jitter_band",
        "factor columns",
        "--cases 0",
    ):
        assert expected in notes
    assert {p.stem for p in outcome.figures} == {"dice_by_strategy_CT", "dice_by_strategy_MR"}
    assert outcome.html.read_text().count('class="note"') == len(outcome.notes)


def test_report_replaces_an_earlier_report_and_is_reproducible(planted, tmp_path):
    small = planted.write(tmp_path / "small", protocol=False, fine_tuned=False, factors=False)
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "stale.png").write_bytes(b"old")
    first = build_report([small], out, n_resamples=200, n_cases=0, seed=3)
    assert not (out / "figures" / "stale.png").exists()
    headline = pd.read_csv(out / "tables" / "headline.csv")
    build_report([small], out, n_resamples=200, n_cases=0, seed=3)
    pd.testing.assert_frame_equal(headline, pd.read_csv(out / "tables" / "headline.csv"))
    assert len(first.figures) == len(list((out / "figures").iterdir()))


def test_bad_arguments(planted_results, tmp_path):
    with pytest.raises(ConfigurationError, match="selection rule 'best'"):
        build_report([planted_results], tmp_path / "r", selection="best")
    with pytest.raises(ConfigurationError, match="--cases"):
        build_report([planted_results], tmp_path / "r", n_cases=-1)
    with pytest.raises(MissingFileError, match="no results here"):
        build_report([tmp_path / "missing"], tmp_path / "r")


def test_cli_report_prints_the_headline(planted, tmp_path):
    small = planted.write(tmp_path / "small", protocol=False, fine_tuned=False, factors=False)
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        ["report", str(small), "--out", str(out), "--resamples", "200", "--cases", "0", "--selection", "predicted_iou"],
    )
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "samia report" in printed and "point1" in printed and "figures in" in printed
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
