import subprocess
import sys

import numpy as np
import pandas as pd
import SimpleITK as sitk
from typer.testing import CliRunner

from samia.cli.main import app
from samia.io import read_image, read_label

runner = CliRunner()


def _samia(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "samia.cli.main", *args], capture_output=True, text=True)


def test_segment_a_png_with_a_box(phantom_2d, tmp_path):
    image = sorted((phantom_2d / "images").iterdir())[0]
    out = tmp_path / "mask.png"
    result = runner.invoke(
        app, ["segment", str(image), "--model", "tiny_sam", "--box", "10", "10", "60", "50", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    mask = read_label(out).array
    assert mask.shape == read_image(image).shape and set(np.unique(mask)) <= {0, 255}
    assert "wrote" in result.output


def test_segment_one_slice_of_a_volume_keeps_its_geometry(phantom_3d, tmp_path):
    volume_path = next((phantom_3d / "imagesTr").iterdir())
    out = tmp_path / "mask.nii.gz"
    result = runner.invoke(
        app,
        [
            "segment",
            str(volume_path),
            "--slice",
            "2",
            "--model",
            "tiny_sam",
            "--point",
            "30,30",
            "--negative",
            "5,5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    source, written = sitk.ReadImage(str(volume_path)), sitk.ReadImage(str(out))
    assert written.GetSize() == source.GetSize()
    np.testing.assert_allclose(written.GetSpacing(), source.GetSpacing())
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin())
    array = sitk.GetArrayFromImage(written)
    assert array[[0, 1, 3, 4, 5]].sum() == 0  # only the requested slice can hold the mask


def test_evaluate_command_writes_results_and_prints_the_headline(phantom_2d, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(phantom_2d),
            "--model",
            "tiny_sam",
            "--strategy",
            "box",
            "--out",
            str(out),
            "--limit",
            "2",
            "--selection",
            "single",
        ],
    )
    assert result.exit_code == 0, result.output
    results = pd.read_parquet(out / "results.parquet")
    assert results["case"].nunique() == 2 and set(results["selection"]) == {"single"}
    printed = " ".join(result.output.split())
    assert "Dice mean" in printed and "HD95 px" in printed and "box" in printed and "failures: 0" in printed


def test_evaluate_only_the_named_cases_and_refuse_an_unknown_one(phantom_2d, tmp_path):
    ids = sorted(p.stem for p in (phantom_2d / "images").iterdir())
    common = ["evaluate", "--data", str(phantom_2d), "--model", "tiny_sam", "--strategy", "box",
              "--selection", "single"]  # fmt: skip
    out = tmp_path / "named"
    result = runner.invoke(app, [*common, "--out", str(out), "--case", ids[2], "--case", ids[0]])
    assert result.exit_code == 0, result.output
    assert set(pd.read_parquet(out / "results.parquet")["case"]) == {ids[0], ids[2]}
    unknown = _samia(*common, "--out", str(tmp_path / "unknown"), "--case", "no_such_case")
    assert unknown.returncode == 2
    assert "has no case no_such_case" in unknown.stderr and str(phantom_2d) in unknown.stderr


def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path):
    missing = tmp_path / "nope.png"
    result = _samia(
        "segment", str(missing), "--model", "tiny_sam", "--box", "1", "1", "5", "5", "--out", str(tmp_path / "m.png")
    )
    assert result.returncode == 2
    assert "nope.png" in result.stderr and "Traceback" not in result.stderr
    no_prompt = _samia("segment", str(missing), "--model", "tiny_sam", "--out", str(tmp_path / "m.png"))
    assert no_prompt.returncode == 2 and "--box" in no_prompt.stderr
    unknown = _samia(
        "evaluate",
        "--data",
        str(tmp_path),
        "--model",
        "sam_vit_q",
        "--strategy",
        "box",
        "--out",
        str(tmp_path.parent / "o"),
    )
    assert unknown.returncode == 2 and "sam_vit_q" in unknown.stderr


def test_listing_commands():
    assert "litemedsam" in runner.invoke(app, ["models"]).output
    assert "centroid" in runner.invoke(app, ["strategies"]).output


def test_strategies_lists_each_protocols_rules_and_evaluate_takes_the_protocol(phantom_2d, tmp_path):
    huang = runner.invoke(app, ["strategies", "--protocol", "huang2024"], env={"COLUMNS": "200"})
    assert huang.exit_code == 0 and "m10/m00" in huang.output
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(phantom_2d),
            "--model",
            "tiny_sam",
            "--strategy",
            "point1",
            "--limit",
            "1",
            "--protocol",
            "huang2024",
            "--input-pipeline",
            "medsam",
            "--nsd-variant",
            "boundary_pixels",
            "--cvpr24-nsd",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    from samia.evaluation.config import read_config

    config = read_config(tmp_path / "run" / "config.yaml").flat()
    assert (config["protocol"], config["min_area"], config["preset"]) == ("huang2024", 51, "huang2024")
    assert (config["input_pipeline"], config["nsd_variant"], config["nsd_zero_at_dice"]) == (
        "medsam",
        "boundary_pixels",
        0.2,
    )
