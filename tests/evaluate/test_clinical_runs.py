"""``samia evaluate`` on clinical files: modality from the file, spacing fallbacks and warnings recorded,
the whole grid of image and label checked, progress counted in prompts, a headline that reads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from clinical_files import chest_like, pydicom_file, write_dicom
from PIL import Image
from skimage.transform import resize

from samia.data import build_manifest, load_case
from samia.errors import GeometryMismatchError
from samia.evaluation import EvaluationConfig, ProgressHooks, evaluate
from samia.evaluation.summary import format_headline


def _ct_dataset(root, dataset_json=None):
    """CT_small.dcm (a real CT slice, Modality CT) with a disk mask, in the folder layout."""
    (root / "images").mkdir(parents=True)
    shutil.copy(pydicom_file("CT_small.dcm"), root / "images" / "ct.dcm")
    yy, xx = np.mgrid[:128, :128]
    mask = (((yy - 64) ** 2 + (xx - 60) ** 2) < 20**2).astype(np.uint8)
    (root / "masks").mkdir()
    Image.fromarray(mask).save(root / "masks" / "ct.png")
    if dataset_json is not None:
        (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


def _run(data, out, **options):
    config = EvaluationConfig.from_dict(
        dict(data=str(data), out=str(out), model="tiny_sam", strategies=["box"], **options)
    )
    return evaluate(config)


@pytest.mark.parametrize(
    ("dataset_json", "option", "modality", "preset"),
    [
        (None, None, "CT", "ct_soft_tissue"),  # the DICOM's Modality tag
        ({"modality": "MR"}, None, "MR", "percentile"),  # dataset.json, when it says
        ({"modality": "MR"}, "CT", "CT", "ct_soft_tissue"),  # --modality above both
    ],
)
def test_modality_comes_from_the_file_unless_the_dataset_or_the_user_says(
    tmp_path, dataset_json, option, modality, preset
):
    data = _ct_dataset(tmp_path / "data", dataset_json)
    outcome = _run(data, tmp_path / "out", modality=option)
    assert set(outcome.results["modality"]) == {modality} and set(outcome.results["preset"]) == {preset}


def test_zero_pixel_spacing_is_evaluated_in_1mm_pixels_and_recorded(tmp_path):
    data = tmp_path / "data"
    image = chest_like()
    write_dicom(data / "images" / "cr.dcm", image, PixelSpacing=[0, 0])
    mask = np.zeros(image.shape, np.uint8)
    mask[30:60, 20:40] = 1
    (data / "masks").mkdir()
    Image.fromarray(mask).save(data / "masks" / "cr.png")
    outcome = _run(data, tmp_path / "out")
    assert outcome.errors.empty and len(outcome.results) == 3
    assert set(outcome.results["spacing_source"]) == {"fallback"}
    assert (outcome.results[["spacing_y", "spacing_x"]] == 1.0).all().all()
    warnings_csv = pd.read_csv(tmp_path / "out" / "warnings.csv")
    assert list(warnings_csv["case"]) == ["cr"] and "PixelSpacing" in warnings_csv["message"].iloc[0]
    assert warnings_csv["path"].iloc[0].endswith("cr.dcm") and warnings_csv["count"].iloc[0] == 1


def test_warnings_survive_a_resume_and_are_not_duplicated(tmp_path):
    data = _ct_dataset(tmp_path / "data")
    Image.fromarray(np.asarray(Image.open(data / "masks" / "ct.png")) * 255).save(data / "masks" / "ct.png")
    blurred = resize(np.asarray(Image.open(data / "masks" / "ct.png")), (128, 128), order=1, preserve_range=True)
    shifted = np.roll(blurred, 1, axis=1)  # resampled by half a pixel: an anti-aliased edge
    Image.fromarray(((blurred + shifted) / 2).astype(np.uint8)).save(data / "masks" / "ct.png")
    first = _run(data, tmp_path / "out")
    again = _run(data, tmp_path / "out")
    assert again.units_run == 0
    for outcome in (first, again):  # the edge value also lies in pieces around the mask: warned too
        messages = outcome.warnings["message"].tolist()
        assert len(messages) == 2 and "anti-aliased" in messages[0] and "disconnected pieces" in messages[1]


def _volume_pair(tmp_path, label_origin, label_direction=None):
    array = np.zeros((4, 32, 32), np.int16)
    array[:, 8:24, 8:24] = 100
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.8, 2.5))
    image.SetOrigin((-20.0, 30.0, 5.0))
    label = sitk.GetImageFromArray((array > 0).astype(np.uint8))
    label.CopyInformation(image)
    label.SetOrigin(label_origin)
    if label_direction is not None:
        label.SetDirection(label_direction)
    data = tmp_path / "data"
    for folder, item in (("images", image), ("masks", label)):
        (data / folder).mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(item, str(data / folder / "v.nii.gz"))
    return build_manifest(data)[0]


@pytest.mark.parametrize(
    ("origin", "direction", "fragment"),
    [
        ((-20.0, 30.0, 7.5), None, "origin"),  # one slice off
        ((-19.6, 30.0, 5.0), None, "origin"),  # half a voxel off
        ((-20.0, 30.0, 5.0), (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0), "direction"),  # flipped
    ],
)
def test_a_label_elsewhere_in_space_is_refused(tmp_path, origin, direction, fragment):
    case = _volume_pair(tmp_path, origin, direction)
    with pytest.raises(GeometryMismatchError, match=fragment) as caught:
        load_case(case)
    assert "v.nii.gz" in str(caught.value)


def test_a_label_within_float32_noise_of_the_image_is_accepted(tmp_path):
    case = _volume_pair(tmp_path, (-20.00001, 30.00002, 5.0))
    image, label = load_case(case)
    assert image.shape == label.shape


def test_a_dicom_slice_with_a_nifti_label_elsewhere_is_refused_and_the_run_goes_on(tmp_path):
    data = _ct_dataset(tmp_path / "data")
    dicom = pydicom.dcmread(data / "images" / "ct.dcm")
    dicom.InstanceNumber = 2
    dicom.save_as(data / "images" / "moved.dcm")
    label = sitk.GetImageFromArray(np.asarray(Image.open(data / "masks" / "ct.png"))[None])
    label.SetSpacing((*[float(v) for v in dicom.PixelSpacing], 5.0))
    label.SetOrigin((0.0, 0.0, 0.0))  # the DICOM lies at (-158.1, -179.0, -75.7)
    sitk.WriteImage(label, str(data / "masks" / "moved.nii.gz"))
    outcome = _run(data, tmp_path / "out")
    assert set(outcome.results["case"]) == {"ct"}
    (error,) = outcome.errors.itertuples()
    assert error.case == "moved" and error.error == "GeometryMismatchError" and "origin" in error.message


def test_progress_counts_prompt_decodings_per_unit(phantom_2d, tmp_path):
    units, done, cases = [], [], []
    hooks = ProgressHooks(
        cases_total=cases.append,
        unit_started=lambda unit, total: (units.append((unit, total)), done.append(0)),
        prompts_done=lambda count: done.__setitem__(-1, done[-1] + count),
    )
    config = EvaluationConfig.from_dict(
        dict(
            data=str(phantom_2d),
            out=str(tmp_path / "out"),
            model="tiny_sam",
            strategies=["box", "box_jitter", "clicks"],
            jitter_repeats=2,
            max_clicks=3,
            selections=["oracle", "single"],
        )
    )
    outcome = evaluate(config, hooks)
    assert cases == [3] and len(units) == 3
    objects = outcome.results.groupby("case")[["label", "component"]].apply(lambda f: len(f.drop_duplicates()))
    for (unit, total), decoded in zip(units, done):
        expected = objects[unit] * (1 + 3 * 2 + 3 * 2)  # box, 3 bands x 2 draws, 3 clicks x 2 selections
        assert total == expected and decoded == expected


def test_headline_fits_80_columns_and_shows_object_class_means(phantom_2d, tmp_path):
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(phantom_2d), out=str(tmp_path / "o"), model="tiny_sam", strategies=["box", "point1"])
        )
    )
    text = format_headline(outcome.results)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "HD95 px" in text and "tiny_sam" in text and "..." not in text
    rows = outcome.results[outcome.results["selection"] == "predicted_iou"]
    for (name, strategy), mean in rows.groupby(["object", "strategy"])["dice"].mean().items():
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert f"{mean:.3f}" in line, (name, strategy)
