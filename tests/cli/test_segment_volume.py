"""``samia segment`` on whole volumes: --box3d, --propagate, DICOM-SEG and the challenge's .npz files,
and the one-line refusals of bad input (exit code 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from clinical_files import write_ct_series

from samia.data.phantoms import ellipsoid_mask

SHAPE = (12, 36, 40)


def _phantom_nifti(path: Path) -> Path:
    """A volume with two bright ellipsoids, oblique geometry (spacing, origin, direction all non-trivial)."""
    masks = [ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), ellipsoid_mask(SHAPE, (6, 24, 28), (4, 6, 6))]
    array = np.where(masks[0] | masks[1], 220, 30).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.7, 2.5))
    image.SetOrigin((-10.0, 4.5, 31.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(path))
    return path


def test_box3d_writes_a_label_map_on_the_inputs_exact_grid(cli, tmp_path) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "seg.nii.gz"
    code, stdout, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--box3d", 5, 6, 2, 19, 18, 9, "--box3d", 22, 18, 2, 34, 30, 10,
        "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert "2 objects" in stdout and "slices encoded" in stdout
    written, source = sitk.ReadImage(str(out)), sitk.ReadImage(str(image))
    assert written.GetSize() == source.GetSize()
    assert np.allclose(written.GetSpacing(), source.GetSpacing())
    assert np.allclose(written.GetOrigin(), source.GetOrigin())
    assert np.allclose(written.GetDirection(), source.GetDirection())
    labels = sitk.GetArrayFromImage(written)
    assert set(np.unique(labels)) <= {0, 1, 2}
    occupied = np.flatnonzero(labels.any(axis=(1, 2)))
    assert occupied.min() >= 2 and occupied.max() <= 10  # inside the boxes' z-ranges


def test_a_key_slice_box_propagates_through_the_volume(cli, tmp_path) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "seg.nrrd"
    code, stdout, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--slice", 6, "--box", 5, 6, 19, 18, "--propagate",
        "--min-iou-with-previous", 0, "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert labels.shape == SHAPE and labels[6].any()
    assert np.count_nonzero(labels.any(axis=(1, 2))) > 1  # propagated beyond the key slice


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box3d", 5, 6, 2, 19, 18, 40], r"ct.nii.gz: 3D box .* leaves the volume: z must lie in 0..11"),
        (["--box3d", 19, 6, 2, 5, 18, 9], r"x1 = 5 < x0 = 19"),
        (["--box3d", 5, 6, 9, 19, 18, 2], r"an empty z-range"),
        (["--box3d", 5, 6, 2], r"--box3d.*takes six numbers X0 Y0 Z0 X1 Y1 Z1"),
        (["--box3d", 5, 6, 2, 19, 18, 9, "--box", 1, 2, 3, 4], r"either --box3d or --box"),
        (["--propagate", "--box", 1, 2, 3, 4], r"--propagate needs --slice"),
        (["--slice", 40, "--propagate", "--box", 1, 2, 3, 4], r"--slice 40 is outside"),
        (["--box3d", 5, 6, 2, 19, 18, 9, "--projection", "lasso"], r"unknown projection 'lasso'"),
        (["--box3d", 5, 6, 2, 19, 18, 9, "--overlay", "o.png"], r"--probabilities and --overlay are written for one"),
    ],
)
def test_bad_volume_prompts_are_refused_in_one_line(cli, tmp_path, args, message) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    out = tmp_path / "seg.nii.gz"
    code, _, stderr = cli("segment", image, "--model", "tiny_sam", *args, "--out", out)
    assert code == 2
    import re

    assert re.search(message, stderr), stderr
    assert len(stderr.strip().splitlines()) <= 3  # typer's usage lines for a usage error, else one line
    assert not out.exists()


def test_box3d_on_a_2d_image_is_refused(cli, tmp_path) -> None:
    from PIL import Image

    png = tmp_path / "slice.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(png)
    code, _, stderr = cli(
        "segment", png, "--model", "tiny_sam", "--box3d", 1, 1, 0, 5, 5, 0, "--out", tmp_path / "s.nii.gz"
    )
    assert code == 2 and "slice.png is a 2D image" in stderr and "--box3d and --propagate need a volume" in stderr


def test_a_4d_volume_is_refused(cli, tmp_path) -> None:
    image = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))] * 3)
    path = tmp_path / "series4d.nii.gz"
    sitk.WriteImage(image, str(path))
    code, _, stderr = cli(
        "segment", path, "--model", "tiny_sam", "--box3d", 0, 0, 0, 3, 3, 2, "--out", tmp_path / "s.nii.gz"
    )
    assert code == 2 and "series4d.nii.gz" in stderr and "4 dimensions" in stderr


def test_a_dicom_series_gives_a_dicom_seg_that_reads_back_onto_the_same_voxels(cli, tmp_path) -> None:
    masks = [ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), ellipsoid_mask(SHAPE, (6, 24, 28), (4, 6, 6))]
    files = write_ct_series(tmp_path / "series", np.where(masks[0] | masks[1], 60, -700))
    boxes = ["--box3d", 5, 6, 2, 19, 18, 9, "--box3d", 22, 18, 2, 34, 30, 10]
    nifti, seg = tmp_path / "seg.nii.gz", tmp_path / "seg.dcm"
    assert cli("segment", tmp_path / "series", "--model", "tiny_sam", *boxes, "--out", nifti)[0] == 0
    code, _, stderr = cli("segment", tmp_path / "series", "--model", "tiny_sam", *boxes, "--out", seg)
    assert code == 0, stderr
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))
    assert expected.any()
    dataset = pydicom.dcmread(seg)
    assert dataset.Modality == "SEG" and dataset.SegmentationType == "BINARY"
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    referenced = {
        item.ReferencedSOPInstanceUID for item in dataset.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == {str(s.SOPInstanceUID) for s in sources}
    assert dataset.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    read = hd.seg.segread(seg)
    # the series' files are written in z order: frame k of the series is slice k of the NIfTI output
    labels = read.get_pixels_by_source_instance([str(s.SOPInstanceUID) for s in sources], combine_segments=True)
    assert np.array_equal(np.asarray(labels), expected)


def _segment_identities(seg: Path) -> list[tuple[str, str, str, str]]:
    """``(label, category scheme:code, type scheme:code, type meaning)`` of each segment, read with pydicom."""
    identities = []
    for item in pydicom.dcmread(seg).SegmentSequence:
        category, kind = item.SegmentedPropertyCategoryCodeSequence[0], item.SegmentedPropertyTypeCodeSequence[0]
        identities.append(
            (
                item.SegmentLabel,
                f"{category.CodingSchemeDesignator}:{category.CodeValue}",
                f"{kind.CodingSchemeDesignator}:{kind.CodeValue}",
                kind.CodeMeaning,
            )
        )
    return identities


def test_dicom_seg_segments_carry_the_given_names_and_snomed_codes(cli, tmp_path) -> None:
    """Named and coded segments (SNOMED CT 10200004 Liver, an anatomical structure 91723000; 108369006
    Neoplasm, a morphologically abnormal structure 49755003: PS3.16 CID 7151/7150); uncoded ones are
    "object n", Tissue 85756007 / Tissue 85756007."""
    masks = [ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), ellipsoid_mask(SHAPE, (6, 24, 28), (4, 6, 6))]
    write_ct_series(tmp_path / "series", np.where(masks[0] | masks[1], 60, -700))
    boxes = ["--box3d", 5, 6, 2, 19, 18, 9, "--box3d", 22, 18, 2, 34, 30, 10]
    named, plain = tmp_path / "named.dcm", tmp_path / "plain.dcm"
    code, _, stderr = cli(
        "segment", tmp_path / "series", "--model", "tiny_sam", *boxes, "--out", named,
        "--segment-label", "liver", "--segment-label", "lesion 1", "--segment-code", "liver", "--segment-code", "108369006",
    )  # fmt: skip
    assert code == 0, stderr
    assert _segment_identities(named) == [
        ("liver", "SCT:91723000", "SCT:10200004", "Liver"),
        ("lesion 1", "SCT:49755003", "SCT:108369006", "Neoplasm"),
    ]
    assert cli("segment", tmp_path / "series", "--model", "tiny_sam", *boxes, "--out", plain)[0] == 0
    assert _segment_identities(plain) == [
        ("object 1", "SCT:85756007", "SCT:85756007", "Tissue"),
        ("object 2", "SCT:85756007", "SCT:85756007", "Tissue"),
    ]


@pytest.mark.parametrize(
    ("options", "out", "message"),
    [
        (["--segment-code", "Livr"], "s.dcm", "--segment-code Livr: not a segmentation property type of DICOM CID 7151 (did you mean Liver?"),
        (["--segment-code", "Tissue/Liver"], "s.dcm", "Liver is a type of AnatomicalStructure, not Tissue"),
        (["--segment-label", "liver"], "s.nii.gz", "--segment-label and --segment-code name and code DICOM-SEG segments"),
        (["--segment-label", "a", "--segment-label", "b"], "s.dcm", "2 --segment-label given for 1 object: give one per object"),
    ],
)  # fmt: skip
def test_segment_names_and_codes_are_checked_before_the_model_runs(cli, tmp_path, options, out, message) -> None:
    write_ct_series(tmp_path / "series", np.full(SHAPE, -700))
    code, _, stderr = cli(
        "segment", tmp_path / "series", "--model", "sam_vit_h", "--box3d", 1, 1, 0, 5, 5, 2, "--out", tmp_path / out,
        *options,
    )  # fmt: skip
    assert code == 2 and message in stderr, stderr
    assert "checkpoint" not in stderr  # refused before the model (which needs a checkpoint) is built
    assert list(tmp_path.iterdir()) == [tmp_path / "series"]


def test_a_dicom_seg_needs_a_series(cli, tmp_path) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--box3d", 1, 1, 0, 5, 5, 2, "--out", tmp_path / "s.dcm"
    )
    assert code == 2 and "a DICOM-SEG needs a DICOM series folder" in stderr


def test_the_challenges_npz_files_run_unchanged(cli, tmp_path) -> None:
    masks = [ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), ellipsoid_mask(SHAPE, (6, 24, 28), (4, 6, 6))]
    imgs = np.where(masks[0] | masks[1], 220, 30).astype(np.uint8)
    boxes = np.array([[5, 6, 2, 19, 18, 9], [22, 18, 2, 34, 30, 10]])
    case = tmp_path / "3DBox_CT_case.npz"
    np.savez(case, imgs=imgs, boxes=boxes, spacing=np.array([0.8, 0.7, 2.5]))
    out = tmp_path / "segs" / "3DBox_CT_case.npz"
    code, stdout, stderr = cli("segment", case, "--model", "tiny_sam", "--out", out)
    assert code == 0, stderr
    assert "preset passthrough" in stdout
    with np.load(out) as written:
        assert written.files == ["segs"] and written["segs"].shape == SHAPE
        assert set(np.unique(written["segs"])) <= {0, 1, 2}
    flat = tmp_path / "2DBox_US_case.npz"
    np.savez(flat, imgs=np.repeat(imgs[5][:, :, None], 3, axis=2), boxes=np.array([[5, 6, 19, 18]]))
    code, stdout, stderr = cli("segment", flat, "--model", "tiny_sam", "--out", tmp_path / "flat.npz")
    assert code == 0, stderr
    with np.load(tmp_path / "flat.npz") as written:
        assert written["segs"].shape == SHAPE[1:]


ANONYMISED_AWAY = ("FrameOfReferenceUID", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                   "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")  # fmt: skip


def test_an_anonymised_series_without_frame_of_reference_gets_a_seg_frame_by_frame(cli, tmp_path) -> None:
    """Stripped of FrameOfReferenceUID and the type 2 patient/study attributes, and stored under names
    that are not in z order: the label map is written first, the SEG second, and every SEG frame
    equals the label map's slice of the source instance it references."""
    masks = [ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), ellipsoid_mask(SHAPE, (6, 24, 28), (4, 6, 6))]
    folder = tmp_path / "anonymised"
    files = write_ct_series(folder, np.where(masks[0] | masks[1], 60, -700))
    rng = np.random.default_rng(3)
    for path, name in zip(files, rng.permutation(len(files))):
        ds = pydicom.dcmread(path)
        for keyword in ANONYMISED_AWAY:
            delattr(ds, keyword)
        path.unlink()
        ds.save_as(folder / f"IM{name:04d}", enforce_file_format=True)  # no suffix, shuffled names
    seg = tmp_path / "out" / "seg.dcm"
    boxes = ["--box3d", 5, 6, 2, 19, 18, 9, "--box3d", 22, 18, 2, 34, 30, 10]
    code, stdout, stderr = cli("segment", folder, "--model", "tiny_sam", *boxes, "--out", seg)
    assert code == 0, stderr
    assert "seg.nii.gz and" in stdout and "FrameOfReferenceUID" in stderr and "may not overlay" in stderr
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(seg.with_name("seg.nii.gz"))))
    assert labels.any()
    # independent of samia: each source instance's slice index from its position along z
    sources = [pydicom.dcmread(path, stop_before_pixels=True) for path in sorted(folder.iterdir())]
    z_index = {
        str(s.SOPInstanceUID): rank for rank, s in enumerate(sorted(sources, key=lambda s: s.ImagePositionPatient[2]))
    }
    dataset = pydicom.dcmread(seg)
    for keyword in ANONYMISED_AWAY[1:]:
        assert keyword in dataset and str(dataset[keyword].value) == "", keyword  # present, empty, never invented
    assert dataset.FrameOfReferenceUID  # made, and warned about
    read = hd.seg.segread(seg)
    frames = dataset.pixel_array.reshape(-1, *SHAPE[1:])
    compared = 0
    for frame, group in zip(frames, dataset.PerFrameFunctionalGroupsSequence):
        source = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        segment = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_array_equal(frame.astype(bool), labels[z_index[source]] == segment)
        compared += 1
    assert compared == 2 * SHAPE[0]  # every slice of both segments
    assert read.number_of_segments == 2


def test_a_seg_that_cannot_be_written_keeps_the_label_map(cli, tmp_path) -> None:
    """A series whose slices cannot be referenced (no SOPInstanceUID) fails at the SEG, after the label map."""
    folder = tmp_path / "series"
    write_ct_series(folder, np.where(ellipsoid_mask(SHAPE, (5.5, 12, 12), (4, 6, 7)), 60, -700))
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        del ds.SOPClassUID
        ds.save_as(path)
    seg = tmp_path / "seg.dcm"
    code, _, stderr = cli("segment", folder, "--model", "tiny_sam", "--box3d", 5, 6, 2, 19, 18, 9, "--out", seg)
    assert code != 0 and str(seg) in stderr and "label map is saved in" in stderr and "Traceback" not in stderr
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "seg.nii.gz"))).any()
    assert not seg.exists()


def test_speed_reaches_the_engine_and_is_reported(cli, tmp_path) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    box = ("--box3d", 5, 6, 0, 19, 18, 11)
    code, accurate, stderr = cli("segment", image, "--model", "tiny_sam", *box, "--out", tmp_path / "a.nii.gz")
    assert code == 0, stderr
    code, fast, stderr = cli(
        "segment", image, "--model", "tiny_sam", *box, "--speed", "fast", "--out", tmp_path / "f.nii.gz"
    )
    assert code == 0, stderr
    decoded = [int(text.split(" slices encoded, ")[1].split(" decoded")[0]) for text in (accurate, fast)]
    # the random model's masks disagree from slice to slice, so fast refines its gaps: the sampled
    # answers it drops cost decodes (tests/volume/test_speed_and_corrections.py has the mechanics)
    assert decoded[0] == 12 and decoded[1] > decoded[0] and "(speed fast: " in fast and "(speed " not in accurate
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", *box, "--speed", "quick", "--out", tmp_path / "q.nii.gz"
    )
    assert code == 2 and "unknown speed 'quick'; choose one of accurate, default, fast" in stderr
    assert not (tmp_path / "q.nii.gz").exists()


def test_tracking_picks_sam_2_memory_or_the_slice_engine(cli, tmp_path) -> None:
    pytest.importorskip("sam2", reason="samia[sam2] is not installed")
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    box = (5, 6, 2, 19, 18, 9)
    outputs = {}
    for tracking in ("auto", "memory", "slices"):
        out = tmp_path / f"{tracking}.nii.gz"
        code, stdout, stderr = cli(
            "segment", image, "--model", "tiny_sam2", "--box3d", *box, "--tracking", tracking, "--out", out
        )  # fmt: skip
        assert code == 0, stderr
        outputs[tracking] = (stdout, sitk.GetArrayFromImage(sitk.ReadImage(str(out))))
    assert "tracked with SAM 2's memory" in outputs["auto"][0] and "no hole filling" in outputs["auto"][0]
    assert np.array_equal(outputs["auto"][1], outputs["memory"][1])  # auto = memory for a SAM 2 model
    assert "decoded" in outputs["slices"][0] and "memory" not in outputs["slices"][0]
    for tracking in ("memory", "slices"):
        occupied = np.flatnonzero(outputs[tracking][1].any(axis=(1, 2)))
        assert occupied.size == 0 or (occupied.min() >= 2 and occupied.max() <= 9)  # the box's z-range bounds both


def test_memory_tracking_refuses_slice_engine_options_and_other_models(cli, tmp_path) -> None:
    image = _phantom_nifti(tmp_path / "ct.nii.gz")
    box = ("--box3d", 5, 6, 2, 19, 18, 9, "--out", tmp_path / "seg.nii.gz")
    code, _, stderr = cli("segment", image, "--model", "tiny_sam", "--tracking", "memory", *box)
    assert code == 2 and "memory propagation needs a SAM 2 family model" in stderr
    code, _, stderr = cli("segment", image, "--model", "tiny_sam", "--tracking", "sideways", *box)
    assert code == 2 and "--tracking sideways: choose one of auto, memory, slices" in stderr
    assert not (tmp_path / "seg.nii.gz").exists()
