"""Multi-rater datasets: the three layouts give the same masks, "not annotated" is not "empty", and
broken files give one-line errors naming them."""

import json

import numpy as np
import pytest

from samia.data.rater_phantoms import RATER_MODELS, rater_phantom, write_rater_dataset
from samia.data.raters import detect_rater_layout, rater_objects, read_rater_labels, scan_rater_dataset
from samia.errors import DatasetLayoutError, GeometryMismatchError, InvalidLabelError, MissingMaskError
from samia.io.image2d import write_image_2d

NAMES = tuple(rater.name for rater in RATER_MODELS)


@pytest.mark.parametrize("layout", ["rater_folders", "rater_suffix", "rater_stack"])
def test_each_layout_reads_the_phantoms_raters_masks(tmp_path, layout):
    root = write_rater_dataset(tmp_path / layout, 3, layout, seed=4)
    rng = np.random.default_rng(4)
    expected = [rater_phantom(rng) for _ in range(3)]  # the generator draws the phantoms in this order
    scan = scan_rater_dataset(root)
    assert (scan.layout, scan.raters, scan.problems) == (layout, NAMES, [])
    assert [case.case_id for case in scan.cases] == ["phantom_000", "phantom_001", "phantom_002"]
    for case, phantom in zip(scan.cases, expected):
        image, labels = read_rater_labels(case, scan)
        assert image.shape == phantom.image.shape
        [obj] = rater_objects(labels, scan.raters)
        assert obj.label == 1 and obj.raters == NAMES
        np.testing.assert_array_equal(obj.masks, phantom.masks)


def test_a_missing_rater_file_is_not_an_empty_annotation(tmp_path):
    root = write_rater_dataset(tmp_path / "d", 2, "rater_folders")
    (root / "raters" / "generous" / "phantom_000.png").unlink()  # generous did not annotate case 0
    write_image_2d(root / "raters" / "tight_smooth" / "phantom_000.png", np.zeros((96, 96), np.uint8))  # saw nothing
    scan = scan_rater_dataset(root)
    first, second = (rater_objects(read_rater_labels(case, scan)[1], scan.raters) for case in scan.cases)
    assert first[0].raters == ("exact_with_lobe", "exact_without_lobe", "tight_smooth")
    assert not first[0].masks[2].any()  # the empty annotation is kept as a rater's answer
    assert second[0].raters == NAMES


def test_stack_annotated_flags_and_minus_one_planes(tmp_path):
    root = write_rater_dataset(tmp_path / "d", 2, "rater_stack")
    with np.load(root / "stacks" / "phantom_000.npz") as archive:
        masks = archive["masks"]
    np.savez(root / "stacks" / "phantom_000.npz", masks=masks, annotated=np.array([True, False, True, True]))
    npy = masks.astype(np.int16)
    npy[3] = -1
    (root / "stacks" / "phantom_001.npz").unlink()
    np.save(root / "stacks" / "phantom_001.npy", npy)
    scan = scan_rater_dataset(root)
    kept = [tuple(read_rater_labels(case, scan)[1]) for case in scan.cases]
    assert kept == [
        ("generous", "exact_without_lobe", "tight_smooth"),
        ("generous", "exact_with_lobe", "exact_without_lobe"),
    ]


def test_suffix_layout_cuts_case_ids_with_underscores_at_a_known_rater(tmp_path):
    root = tmp_path / "d"
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    image = np.random.default_rng(0).integers(0, 255, (32, 32)).astype(np.uint8)
    write_image_2d(root / "images" / "lidc_0001_n1.png", image)
    for rater in ("r1", "r10"):
        write_image_2d(root / "masks" / f"lidc_0001_n1_{rater}.png", (image > 128).astype(np.uint8))
    write_image_2d(root / "masks" / "lidc_0001_n1_r7.png", (image > 128).astype(np.uint8))
    (root / "dataset.json").write_text(json.dumps({"raters": ["r1", "r10"]}))
    scan = scan_rater_dataset(root)
    assert detect_rater_layout(root) == "rater_suffix"
    assert sorted(scan.cases[0].rater_paths) == ["r1", "r10"]
    assert len(scan.problems) == 1 and "lidc_0001_n1_r7.png" in str(scan.problems[0])


def test_problems_and_errors_name_the_file(tmp_path):
    root = write_rater_dataset(tmp_path / "d", 3, "rater_folders")
    for rater in NAMES:
        (root / "raters" / rater / "phantom_002.png").unlink()
    write_image_2d(root / "raters" / "generous" / "orphan.png", np.zeros((96, 96), np.uint8))
    write_image_2d(root / "raters" / "generous" / "phantom_001.png", np.zeros((50, 50), np.uint8))
    scan = scan_rater_dataset(root)
    assert {type(p).__name__ for p in scan.problems} == {"MissingMaskError", "MissingFileError"}
    assert any(isinstance(p, MissingMaskError) and "phantom_002" in str(p) for p in scan.problems)
    with pytest.raises(GeometryMismatchError, match=r"generous/phantom_001.png.*\(50, 50\)"):
        read_rater_labels(scan.cases[1], scan)


def test_bad_stacks_and_descriptions_are_refused(tmp_path):
    root = write_rater_dataset(tmp_path / "d", 1, "rater_stack")
    np.save(root / "stacks" / "phantom_000.npy", np.zeros((96, 96), np.uint8))
    (root / "stacks" / "phantom_000.npz").unlink()
    scan = scan_rater_dataset(root)
    with pytest.raises(InvalidLabelError, match=r"phantom_000.npy: stack must be a \(K, H, W\) integer array"):
        read_rater_labels(scan.cases[0], scan)
    np.save(root / "stacks" / "phantom_000.npy", np.zeros((6, 96, 96), np.uint8))
    with pytest.raises(InvalidLabelError, match="6 planes but the dataset names 4 raters"):
        read_rater_labels(scan_rater_dataset(root).cases[0], scan)
    (root / "dataset.json").write_text(json.dumps({"raters": ["a", "a"]}))
    with pytest.raises(DatasetLayoutError, match="names a rater twice"):
        scan_rater_dataset(root)
    plain = tmp_path / "plain"
    (plain / "images").mkdir(parents=True)
    assert detect_rater_layout(plain) is None
    with pytest.raises(DatasetLayoutError, match="no multi-rater layout"):
        scan_rater_dataset(plain)
