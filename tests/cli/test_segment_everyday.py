"""``samia segment`` for everyday work: several objects in one call, probabilities, overlays, plain messages.

The real LiteMedSAM weights run on a real bundled MRI slice (a 217 x 181 image encodes in a second
on a CPU); the one-by-one calls are the reference for the multi-object call.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from clinical_files import pydicom_file
from PIL import Image

import samia
from samia.cli.choices import MODALITY_NAMES, PRESET_NAMES, STRATEGY_NAMES, VOLUME_STRATEGY_NAMES
from samia.io import read_image, read_label

IMAGE = "samia/data/samples/colin27_aal_2d/images/colin27_axial_025.png"
CEREBELLUM_L = ["92", "123", "146", "171"]
CEREBELLUM_R = ["35", "123", "89", "171"]


def _segment(cli, out, *args):
    code, stdout, stderr = cli("segment", IMAGE, "--model", "litemedsam", "--out", out, *args)
    assert code == 0, stderr
    return stdout, stderr


def test_several_boxes_give_a_label_map_whose_objects_match_one_by_one_calls(cli, tmp_path):
    _segment(cli, tmp_path / "left.png", "--box", *CEREBELLUM_L)
    _segment(cli, tmp_path / "right.png", "--box", *CEREBELLUM_R)
    stdout, _ = _segment(cli, tmp_path / "both.png", "--box", *CEREBELLUM_L, "--box", *CEREBELLUM_R)
    labels = read_label(tmp_path / "both.png").array
    left, right = (read_label(tmp_path / f"{side}.png").array > 0 for side in ("left", "right"))
    assert left.sum() > 500 and right.sum() > 500 and not (left & right).any()
    assert set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_array_equal(labels == 1, left)
    np.testing.assert_array_equal(labels == 2, right)
    assert "2 objects" in stdout


def test_a_prompts_file_gives_the_same_label_map_as_repeated_boxes(cli, tmp_path):
    lines = [{"box": [float(v) for v in CEREBELLUM_L]}, {"box": [float(v) for v in CEREBELLUM_R]}]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    _segment(cli, tmp_path / "file.png", "--prompts", prompts)
    _segment(cli, tmp_path / "boxes.png", "--box", *CEREBELLUM_L, "--box", *CEREBELLUM_R)
    np.testing.assert_array_equal(read_label(tmp_path / "file.png").array, read_label(tmp_path / "boxes.png").array)


def test_probability_map_thresholded_at_one_half_is_the_mask(cli, tmp_path):
    _segment(cli, tmp_path / "m.png", "--box", *CEREBELLUM_L, "--probabilities", tmp_path / "p.tif")
    probabilities = tifffile.imread(tmp_path / "p.tif")
    mask = read_label(tmp_path / "m.png").array > 0
    assert probabilities.dtype == np.float32 and probabilities.shape == mask.shape
    assert 0 <= probabilities.min() and probabilities.max() <= 1 and 0.01 < probabilities.mean() < 0.5
    np.testing.assert_array_equal(probabilities > 0.5, mask)


def test_probability_maps_of_several_objects_are_numbered_files(cli, tmp_path):
    _segment(
        cli, tmp_path / "m.png", "--box", *CEREBELLUM_L, "--box", *CEREBELLUM_R, "--probabilities", tmp_path / "p.tif"
    )
    labels = read_label(tmp_path / "m.png").array
    for number in (1, 2):
        probabilities = tifffile.imread(tmp_path / f"p_{number}.tif")
        np.testing.assert_array_equal(probabilities > 0.5, labels == number)


def test_probabilities_of_a_volume_slice_are_a_nifti_on_the_volume(cli, phantom_3d, tmp_path):
    volume = next((phantom_3d / "imagesTr").iterdir())
    code, _, stderr = cli(
        "segment", volume, "--slice", "2", "--model", "tiny_sam", "--box", "10", "10", "40", "40",
        "--out", tmp_path / "m.nii.gz", "--probabilities", tmp_path / "p.nii.gz",
    )  # fmt: skip
    assert code == 0, stderr
    source, written = sitk.ReadImage(str(volume)), sitk.ReadImage(str(tmp_path / "p.nii.gz"))
    assert written.GetSize() == source.GetSize() and written.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin())
    probabilities = sitk.GetArrayFromImage(written)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "m.nii.gz"))) > 0
    np.testing.assert_array_equal(probabilities > 0.5, mask)
    assert probabilities[[0, 1, 3, 4, 5]].max() == 0


def test_overlay_draws_masks_and_prompts_without_a_ground_truth(cli, tmp_path):
    _segment(cli, tmp_path / "m.png", "--box", *CEREBELLUM_L, "--box", *CEREBELLUM_R, "--overlay", tmp_path / "o.png")
    picture = np.asarray(Image.open(tmp_path / "o.png").convert("RGB")).astype(int)
    assert picture.shape[0] > 300 and picture.shape[1] > 250
    saturated = (picture.max(axis=2) - picture.min(axis=2)) > 60  # coloured fill, outline, box: not gray
    assert saturated.mean() > 0.02


def test_an_empty_result_is_said_plainly_and_exits_0(cli, tmp_path):
    # LiteMedSAM was trained with boxes only: this single click in the cerebellum gives it nothing
    stdout, stderr = _segment(cli, tmp_path / "m.png", "--point", "100,140")
    assert read_label(tmp_path / "m.png").array.max() == 0
    assert "the model returned an empty mask" in stderr and "wrote" in stdout


def test_a_dicom_slice_segmented_to_nifti_keeps_its_place(cli, tmp_path):
    dicom = pydicom_file("CT_small.dcm")
    code, _, stderr = cli(
        "segment", dicom, "--model", "tiny_sam", "--box", "30", "30", "90", "90", "--out", tmp_path / "m.nii.gz"
    )
    assert code == 0, stderr
    written, source = sitk.ReadImage(str(tmp_path / "m.nii.gz")), sitk.ReadImage(str(dicom))
    np.testing.assert_allclose(written.GetOrigin(), source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(written.GetDirection(), source.GetDirection(), atol=1e-6)


def test_box_with_three_numbers_says_what_it_expects(cli, tmp_path):
    code, _, stderr = cli(
        "segment", IMAGE, "--model", "litemedsam", "--box", "1", "2", "3", "--out", tmp_path / "m.png"
    )
    assert code == 2 and "four numbers X0 Y0 X1 Y1" in stderr and "got 3: 1 2 3" in stderr


def test_several_boxes_with_points_are_refused(cli, tmp_path):
    code, _, stderr = cli(
        "segment", IMAGE, "--model", "litemedsam", "--box", *CEREBELLUM_L, "--box", *CEREBELLUM_R,
        "--point", "100,140", "--out", tmp_path / "m.png",
    )  # fmt: skip
    assert code == 2 and "--prompts" in stderr


def test_version(cli):
    code, stdout, _ = cli("--version")
    assert code == 0 and stdout.strip() == f"samia {samia.__version__}"


@pytest.mark.parametrize("command", ["segment", "evaluate", "finetune", "report", "models", "strategies"])
def test_help_has_readable_placeholders(cli, command):
    code, stdout, _ = cli(command, "--help")
    assert code == 0
    for placeholder in ("<bool>", "<str>", "<int>", "<float>", "<path>", "<list[", "<float,"):
        assert placeholder not in stdout, placeholder


def test_help_lists_the_names_it_mirrors(cli):
    from samia.prompts import strategy_registry
    from samia.transforms import PRESETS
    from samia.types import MODALITIES
    from samia.volume import VOLUME_STRATEGIES

    assert PRESET_NAMES == tuple(PRESETS) and MODALITY_NAMES == MODALITIES
    assert STRATEGY_NAMES == tuple(strategy_registry())
    assert VOLUME_STRATEGY_NAMES == tuple(VOLUME_STRATEGIES)
    _, stdout, _ = cli("evaluate", "--help")
    flat = " ".join(stdout.split())
    for name in (*PRESET_NAMES, *MODALITY_NAMES, *STRATEGY_NAMES, *VOLUME_STRATEGY_NAMES):
        assert name in flat, name


def test_the_prediction_api_gives_probabilities_without_torch():
    from samia.models import build_model
    from samia.predictor import SamiaPredictor
    from samia.transforms import default_preset, to_rgb_uint8
    from samia.types import Prompt

    image = read_image(IMAGE, modality="MR")
    predictor = SamiaPredictor(build_model("tiny_medsam"))
    predictor.set_image(to_rgb_uint8(image, default_preset("MR", False)))
    prediction = predictor.predict(Prompt(box=[float(v) for v in CEREBELLUM_L]))
    probabilities = prediction.probabilities()
    assert isinstance(probabilities, np.ndarray) and probabilities.shape == prediction.masks.shape
    np.testing.assert_array_equal(probabilities > 0.5, prediction.masks)
    upsampled = predictor.geometry.logits_to_original(prediction.low_res_logits)  # numpy in, numpy out
    assert isinstance(upsampled, np.ndarray)
    np.testing.assert_array_equal(upsampled > 0, prediction.masks)


def test_segment_help_names_every_input_and_output_kind(cli):
    code, stdout, _ = cli("segment", "--help")
    flat = " ".join(stdout.split())
    assert code == 0
    for kind in ("DICOM file", "DICOM series", ".npz", ".nii.gz", ".dcm (DICOM-SEG", "--box3d", "--propagate"):
        assert kind in flat, kind


def test_the_command_list_gives_each_first_sentence_whole(cli):
    import typer.main
    from typer.core import TyperGroup

    from samia.cli.main import app

    code, stdout, _ = cli("--help")
    listed = " ".join(stdout.split("Commands:")[1].split())
    assert code == 0 and "..." not in listed
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    for name, command in group.commands.items():
        first = " ".join((command.help or "").split("\n\n")[0].split()).split(". ")[0].rstrip(".")
        assert f"{name} {first}." in listed, name
