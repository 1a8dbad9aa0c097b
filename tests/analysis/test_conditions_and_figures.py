"""Runs of one model under different configurations stay apart; figures keep every label readable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from samia.analysis import plots
from samia.analysis.report import build_report
from samia.analysis.results import load_results
from samia.evaluation import EvaluationConfig, evaluate


@pytest.fixture(scope="module")
def two_presets(phantom_2d, tmp_path_factory):
    """The same model, objects and prompts, under two intensity presets."""
    root = tmp_path_factory.mktemp("presets")
    for name, preset in (("percentile", None), ("passthrough", "passthrough")):
        config = EvaluationConfig.from_dict(
            dict(
                data=str(phantom_2d),
                out=str(root / name),
                model="tiny_sam",
                strategies=["box", "point1"],
                preset=preset,
            )
        )
        evaluate(config)
    return root / "percentile", root / "passthrough"


def test_runs_that_differ_in_configuration_are_two_conditions(two_presets):
    results = load_results(two_presets)
    assert set(results["model_id"]) == {"tiny_sam [preset=default]", "tiny_sam [preset=passthrough]"}
    per_object = results.groupby(["model_id", "case", "label", "strategy", "selection"]).size()
    assert (per_object == 1).all()  # no object counted twice in one arm


def test_report_compares_the_two_conditions_paired(two_presets, tmp_path):
    build_report(list(two_presets), tmp_path / "report", n_resamples=200, n_cases=0)
    comparisons = pd.read_csv(tmp_path / "report" / "tables" / "compare_models.csv")
    assert set(comparisons["a"]) | set(comparisons["b"]) == {
        "tiny_sam [preset=default]",
        "tiny_sam [preset=passthrough]",
    }
    box_single = comparisons[(comparisons["strategy"] == "box") & (comparisons["selection"] == "single")].iloc[0]
    results = load_results(two_presets)
    rows = results[(results["strategy"] == "box") & (results["selection"] == "single")]
    paired = rows.pivot_table(index=["case", "label"], columns="model_id", values="dice")
    per_case = (paired[box_single["a"]] - paired[box_single["b"]]).groupby(level="case").mean()
    assert box_single["n"] == len(per_case) == 3 and box_single["n_pairs"] == len(paired)  # n counts cases
    assert box_single["mean_difference"] == pytest.approx(per_case.mean())
    assert box_single["p_withheld"] and np.isnan(box_single["p_value"])  # 3 cases: no p-value


def test_identical_configurations_pool_under_one_name(phantom_2d, tmp_path):
    for name in ("a", "b"):
        evaluate(
            EvaluationConfig.from_dict(
                dict(data=str(phantom_2d), out=str(tmp_path / name), model="tiny_sam", strategies=["box"])
            )
        )
    assert set(load_results([tmp_path / "a", tmp_path / "b"])["model_id"]) == {"tiny_sam"}


def _rendered_text(figure):
    """The visible text artists of a drawn figure with their pixel boxes."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = figure.findobj(Text)
    texts = list({id(t): t for t in found if t.get_visible() and t.get_text()}.values())
    return [(t, t.get_window_extent(renderer)) for t in texts]


def _overlapping(boxes):
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]


def test_factor_plot_tick_labels_do_not_overlap():
    rng = np.random.default_rng(0)
    n = 60
    scores = pd.DataFrame(
        {
            "strategy": np.repeat(["box", "point1", "point5_neg5"], n),
            "dice": rng.uniform(0, 1, 3 * n),
            "area_px": np.exp(rng.uniform(np.log(20), np.log(200000), 3 * n)),  # four decades
            "efd_order": rng.integers(1, 30, 3 * n),
            "n_components": rng.integers(1, 4, 3 * n),
            "contrast": rng.uniform(0, 0.9, 3 * n),
        }
    )
    figure = plots.dice_vs_factors(scores, ["area_px", "efd_order", "n_components", "contrast"], "a long model name")
    for axes in figure.axes:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        labels = [t.get_window_extent() for t in axes.get_xticklabels() if t.get_visible() and t.get_text()]
        assert len(labels) >= 2 and not _overlapping(labels), axes.get_xlabel()
    integer_ticks = [float(t.get_text().replace("−", "-")) for t in figure.axes[2].get_xticklabels() if t.get_text()]
    assert all(v == int(v) for v in integer_ticks)


def test_oracle_gap_title_and_legend_lie_inside_the_saved_picture():
    gaps = pd.DataFrame(
        {
            "model_id": np.repeat(["litemedsam [input_pipeline=litemedsam]", "litemedsam [input_pipeline=sam]"], 20),
            "strategy": "box",
            "gap": np.linspace(0, 0.3, 40),
        }
    )
    figure = plots.selection_gap(gaps, "oracle", "predicted_iou")
    png = plots.figure_png(figure)  # saved with a tight bounding box
    texts = _rendered_text(figure)
    for text, box in texts:  # inside the figure: nothing clipped
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, text.get_text()
        assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1, text.get_text()
    title = next(box for text, box in texts if "What choosing" in text.get_text())
    legend = [box for text, box in texts if text.get_text().startswith("litemedsam [")]
    assert len(legend) == 2 and not _overlapping([title, *legend])
    assert not _overlapping([figure.axes[0].bbox, *legend])  # the legend hides no box
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
