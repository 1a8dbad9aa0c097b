"""Layout adapters and manifests on datasets written into tmp_path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from samia.data import (
    LAYOUTS,
    MANIFEST_COLUMNS,
    Case,
    build_manifest,
    detect_layout,
    iter_slice_items,
    manifest_frame,
    normalize_modality,
    scan_dataset,
)
from samia.errors import ConfigurationError, DatasetLayoutError, MissingFileError, SamiaError

VOL = np.zeros((3, 8, 8), dtype=np.uint8)
VOL[1, 2:6, 2:6] = 1


# ---------------------------------------------------------------------------------------------- folder


def test_folder_layout_mixed_formats_pairs_by_stem_and_loads(
    tmp_path, save_png, save_dicom, save_volume, save_json, gray_image, two_label_map
):
    root = tmp_path / "ds"
    save_dicom(root / "images" / "a.dcm", gray_image.astype(np.uint16) * 3)
    save_png(root / "masks" / "a.png", two_label_map)
    save_png(root / "images" / "b.tif", gray_image.astype(np.uint16) * 200)
    save_png(root / "masks" / "b.png", two_label_map)
    save_png(root / "images" / "c.png", gray_image)
    save_png(root / "masks" / "c.tiff", two_label_map)
    (root / "images" / "notes.txt").write_text("not an image")  # unsupported ending: ignored
    save_json(root / "dataset.json", {"name": "mixed", "modality": "MR", "labels": {"1": "left", "2": "right"}})

    cases = build_manifest(root)
    assert [c.case_id for c in cases] == ["a", "b", "c"]
    assert [(c.image_path.name, c.label_path.name) for c in cases] == [
        ("a.dcm", "a.png"),
        ("b.tif", "b.png"),
        ("c.png", "c.tiff"),
    ]
    assert all(c.dataset == "mixed" and c.modality == "MR" for c in cases)
    assert all(c.image_path.is_absolute() for c in cases)
    assert cases[0].label_names == {1: "left", 2: "right"}
    for case in cases:  # each pair loads through samia.io and gives the two objects
        (item,) = list(iter_slice_items(case, min_area=1))
        assert item.slice_index is None
        assert item.image.shape == (32, 40)
        assert [(o.label, o.name) for o in item.objects] == [(1, "left"), (2, "right")]
        np.testing.assert_array_equal(item.objects[1].mask, two_label_map == 2)


@pytest.mark.parametrize(
    "labels",
    [
        {"1": "thalamus_l", "2": "thalamus_r"},  # value -> name
        {"0": "background", "1": "thalamus_l", "2": "thalamus_r"},  # MSD style with background
        {"background": 0, "thalamus_l": 1, "thalamus_r": 2},  # name -> value (nnU-Net v2 style)
        {"thalamus_l": "1", "thalamus_r": "2"},  # name -> value with string values
    ],
)
def test_folder_dataset_json_labels_either_direction(tmp_path, save_png, save_json, gray_image, two_label_map, labels):
    save_png(tmp_path / "images" / "x.png", gray_image)
    save_png(tmp_path / "masks" / "x.png", two_label_map)
    save_json(tmp_path / "dataset.json", {"labels": labels})
    (case,) = build_manifest(tmp_path)
    assert case.label_names == {1: "thalamus_l", 2: "thalamus_r"}
    assert case.label_name(2) == "thalamus_r"
    assert case.label_name(7) == "label_7"


def test_folder_dataset_json_unreadable_labels_named(tmp_path, save_png, save_json, gray_image, two_label_map):
    save_png(tmp_path / "images" / "x.png", gray_image)
    save_png(tmp_path / "masks" / "x.png", two_label_map)
    save_json(tmp_path / "dataset.json", {"labels": {"liver": "big"}})
    with pytest.raises(DatasetLayoutError, match=r"dataset\.json.*liver"):
        build_manifest(tmp_path)


def test_folder_without_json_uses_folder_name_and_defaults(tmp_path, save_png, gray_image, two_label_map):
    root = tmp_path / "my_data"
    save_png(root / "images" / "x.png", gray_image)
    save_png(root / "masks" / "x.png", two_label_map)
    (case,) = build_manifest(root)
    assert case.dataset == "my_data"
    assert case.modality is None  # nothing says: each image file's own modality applies
    assert case.label_names == {}
    assert case.label_name(1) == "label_1"


def test_modality_override_and_aliases(tmp_path, save_png, save_json, gray_image, two_label_map):
    save_png(tmp_path / "images" / "x.png", gray_image)
    save_png(tmp_path / "masks" / "x.png", two_label_map)
    save_json(tmp_path / "dataset.json", {"modality": {"0": "MRI"}})
    assert build_manifest(tmp_path)[0].modality == "MR"
    assert build_manifest(tmp_path, modality="CT")[0].modality == "CT"
    assert build_manifest(tmp_path, modality="ultrasound")[0].modality == "US"
    with pytest.raises(ConfigurationError, match="unknown modality 'banana'"):
        build_manifest(tmp_path, modality="banana")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MRI", "MR"),
        ("t2", "MR"),
        ("FLAIR", "MR"),
        ("CT", "CT"),
        ("ct", "CT"),
        ("X-ray", "XR"),
        ("oct", "OCT"),
        ("noNorm", "other"),
    ],  # fmt: skip
)
def test_normalize_modality(name, expected):
    assert normalize_modality(name) == expected


def test_missing_mask_raises_naming_image_and_expected_location(tmp_path, save_png, gray_image, two_label_map):
    save_png(tmp_path / "images" / "a.png", gray_image)
    save_png(tmp_path / "masks" / "a.png", two_label_map)
    save_png(tmp_path / "images" / "b.png", gray_image)
    with pytest.raises(MissingFileError) as info:
        build_manifest(tmp_path)
    assert info.value.path == str((tmp_path / "images" / "b.png").resolve())
    assert "no mask found" in str(info.value)
    assert str((tmp_path / "masks" / "b").resolve()) + ".<ext>" in str(info.value)


def test_missing_files_recorded_when_errors_list_given(tmp_path, save_png, gray_image, two_label_map):
    save_png(tmp_path / "images" / "a.png", gray_image)
    save_png(tmp_path / "masks" / "a.png", two_label_map)
    save_png(tmp_path / "images" / "b.png", gray_image)  # no mask
    save_png(tmp_path / "masks" / "c.png", two_label_map)  # no image
    save_png(tmp_path / "images" / "d.png", gray_image)  # two masks with one stem
    save_png(tmp_path / "masks" / "d.png", two_label_map)
    save_png(tmp_path / "masks" / "d.tif", two_label_map)
    errors: list[SamiaError] = []
    cases = build_manifest(tmp_path, errors=errors)
    assert [c.case_id for c in cases] == ["a"]
    by_name = {type(e).__name__ + ":" + e.path.split("/")[-1]: e for e in errors}
    assert set(by_name) == {"MissingMaskError:b.png", "MissingFileError:c.png", "DatasetLayoutError:masks"}
    assert "no mask found" in str(by_name["MissingMaskError:b.png"])
    assert "mask has no image" in str(by_name["MissingFileError:c.png"])
    assert "'d'" in str(by_name["DatasetLayoutError:masks"])


def test_no_complete_case_is_a_layout_error_naming_root(tmp_path, save_png, gray_image):
    (tmp_path / "masks").mkdir()
    save_png(tmp_path / "images" / "a.png", gray_image)
    errors: list[SamiaError] = []
    with pytest.raises(DatasetLayoutError, match="no complete image/mask pair") as info:
        build_manifest(tmp_path, errors=errors)
    assert info.value.path == str(tmp_path.resolve())
    assert len(errors) == 1


# ---------------------------------------------------------------------------------------------- MSD


def _msd(root, save_volume, save_json, training=True, cases=("la_003", "la_007")):
    for case in cases:
        save_volume(root / "imagesTr" / f"{case}.nii.gz", VOL * 10 + 1)
        save_volume(root / "labelsTr" / f"{case}.nii.gz", VOL)
    content = {
        "name": "LeftAtrium",
        "modality": {"0": "MRI"},
        "labels": {"0": "background", "1": "left atrium"},
        "numTraining": len(cases),
    }
    if training:
        content["training"] = [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in cases]
    save_json(root / "dataset.json", content)


def test_msd_layout_uses_training_list(tmp_path, save_volume, save_json):
    _msd(tmp_path, save_volume, save_json)
    save_volume(tmp_path / "imagesTr" / "la_999.nii.gz", VOL)  # not in the training list: ignored
    assert detect_layout(tmp_path) == "msd"
    cases = build_manifest(tmp_path)
    assert [c.case_id for c in cases] == ["la_003", "la_007"]
    assert cases[0].modality == "MR"
    assert cases[0].dataset == "LeftAtrium"
    assert cases[0].label_names == {1: "left atrium"}
    assert cases[0].image_path == (tmp_path / "imagesTr" / "la_003.nii.gz").resolve()


def test_msd_training_entry_without_label_is_recorded(tmp_path, save_volume, save_json):
    _msd(tmp_path, save_volume, save_json)
    (tmp_path / "labelsTr" / "la_007.nii.gz").unlink()
    with pytest.raises(MissingFileError, match="la_007.nii.gz: no mask found; expected .*labelsTr/la_007.nii.gz"):
        build_manifest(tmp_path)
    errors: list[SamiaError] = []
    assert [c.case_id for c in build_manifest(tmp_path, errors=errors)] == ["la_003"]
    assert [e.path.split("/")[-2:] for e in errors] == [["imagesTr", "la_007.nii.gz"]]


def test_msd_without_training_list_pairs_by_stem(tmp_path, save_volume, save_json):
    _msd(tmp_path, save_volume, save_json, training=False)
    (tmp_path / "imagesTr" / "._la_003.nii.gz").write_bytes(b"macOS resource fork")  # hidden: ignored
    cases = build_manifest(tmp_path, layout="msd")
    assert [c.case_id for c in cases] == ["la_003", "la_007"]


# ---------------------------------------------------------------------------------------------- nnU-Net


def _nnunet(root, save_volume, save_json):
    for case in ("liver_1", "liver_0"):
        save_volume(root / "imagesTr" / f"{case}_0000.nii.gz", VOL * 10 + 1)
        save_volume(root / "imagesTr" / f"{case}_0001.nii.gz", VOL * 20 + 1)  # second channel: not used
        save_volume(root / "labelsTr" / f"{case}.nii.gz", VOL)
    save_volume(root / "imagesTr" / "stray.nrrd", VOL)  # not the file ending: ignored
    save_json(
        root / "dataset.json",
        {
            "channel_names": {"0": "CT", "1": "PET"},
            "labels": {"background": 0, "liver": 1, "tumour": 2, "whole": [1, 2]},
            "numTraining": 2,
            "file_ending": ".nii.gz",
        },
    )


def test_nnunet_layout_channel_0000_only(tmp_path, save_volume, save_json):
    root = tmp_path / "Dataset003_Liver"
    _nnunet(root, save_volume, save_json)
    assert detect_layout(root) == "nnunet"
    cases = build_manifest(root)
    assert [c.case_id for c in cases] == ["liver_0", "liver_1"]
    assert all(c.image_path.name.endswith("_0000.nii.gz") for c in cases)
    assert cases[0].label_path.name == "liver_0.nii.gz"
    assert cases[0].modality == "CT"
    assert cases[0].dataset == "Dataset003_Liver"  # no "name": the folder name
    assert cases[0].label_names == {1: "liver", 2: "tumour"}
    notes = " ".join(scan_dataset(root).notes)
    assert "only channel 0000" in notes and "'whole'" in notes


def test_nnunet_label_without_image_recorded(tmp_path, save_volume, save_json):
    _nnunet(tmp_path, save_volume, save_json)
    (tmp_path / "imagesTr" / "liver_1_0000.nii.gz").unlink()
    errors: list[SamiaError] = []
    assert [c.case_id for c in build_manifest(tmp_path, errors=errors)] == ["liver_0"]
    assert len(errors) == 1 and errors[0].path.endswith("labelsTr/liver_1.nii.gz")
    assert "imagesTr/liver_1_0000.<ext>" in str(errors[0])


# ---------------------------------------------------------------------------------------------- detection


def test_auto_detects_each_layout(tmp_path, save_png, save_volume, save_json, gray_image, two_label_map):
    save_png(tmp_path / "f" / "images" / "x.png", gray_image)
    save_png(tmp_path / "f" / "masks" / "x.png", two_label_map)
    _msd(tmp_path / "m", save_volume, save_json)
    _nnunet(tmp_path / "n", save_volume, save_json)
    (tmp_path / "c" / "imgs").mkdir(parents=True)
    (tmp_path / "c" / "gts").mkdir()
    for folder in ("imgs", "gts"):
        np.savez(tmp_path / "c" / folder / "3DBox_MR_x.npz", gts=np.zeros((2, 3, 4), np.uint8))
    assert [detect_layout(tmp_path / d) for d in "fmnc"] == ["folder", "msd", "nnunet", "cvpr24"]
    assert scan_dataset(tmp_path / "m").layout == "msd"
    assert set(LAYOUTS) == {"folder", "msd", "nnunet", "cvpr24"}
    scan = scan_dataset(tmp_path / "c")
    assert scan.pairs == [
        ("3DBox_MR_x", tmp_path / "c" / "imgs" / "3DBox_MR_x.npz", tmp_path / "c" / "gts" / "3DBox_MR_x.npz")
    ]


def test_unknown_structure_lists_what_was_expected(tmp_path):
    (tmp_path / "scans").mkdir()
    with pytest.raises(DatasetLayoutError) as info:
        build_manifest(tmp_path)
    message = str(info.value)
    assert info.value.path == str(tmp_path.resolve())
    assert "images/ + masks/" in message and "imagesTr/" in message and "channel_names" in message
    assert "found: scans/" in message


def test_unknown_layout_name_and_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="unknown layout 'bids'") as info:
        build_manifest(tmp_path, layout="bids")
    assert info.value.path == str(tmp_path.resolve())
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        build_manifest(tmp_path / "nowhere")


def test_forced_layout_that_does_not_fit(tmp_path, save_png, gray_image):
    save_png(tmp_path / "images" / "x.png", gray_image)
    with pytest.raises(DatasetLayoutError, match="masks"):
        build_manifest(tmp_path, layout="folder")
    with pytest.raises(DatasetLayoutError, match="dataset.json"):
        build_manifest(tmp_path, layout="msd")


# ---------------------------------------------------------------------------------------------- Case, frame


def test_case_record_round_trip_and_frame(tmp_path):
    case = Case("c1", tmp_path / "i.png", tmp_path / "m.png", "CT", "ds", {2: "kidney", 1: "liver"})
    record = case.to_record()
    assert json.loads(json.dumps(record)) == record
    assert json.loads(record["label_names"]) == {"1": "liver", "2": "kidney"}
    back = Case.from_record(record)
    assert back == case and hash(back) == hash(case)
    assert {case: 1}[back] == 1
    frame = manifest_frame([case, Case("c0", "a.png", "b.png", "MR", "ds")])
    assert isinstance(frame, pd.DataFrame)
    assert tuple(frame.columns) == MANIFEST_COLUMNS
    assert frame["case_id"].tolist() == ["c1", "c0"]
    assert frame["label_names"].tolist()[1] == "{}"
    assert manifest_frame([]).columns.tolist() == list(MANIFEST_COLUMNS)


def test_a_dataset_json_naming_no_modality_leaves_the_files_their_own(tmp_path, save_png, save_json):
    save_png(tmp_path / "imagesTr" / "c_0000.png", np.zeros((8, 8), np.uint8))
    save_png(tmp_path / "labelsTr" / "c.png", np.ones((8, 8), np.uint8))
    save_json(tmp_path / "dataset.json", {"channel_names": {"0": "noNorm"}, "labels": {"background": 0, "x": 1}})
    (case,) = build_manifest(tmp_path)
    assert case.modality is None
