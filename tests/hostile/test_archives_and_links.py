"""NIfTI and .npz files that were accepted or misread: a .nii.gz cut after the slice read, a 4D NIfTI
with a singleton 4th axis, complex / object / oversized .npz members, and links that loop."""

from __future__ import annotations

import io
import os
import zipfile

import nibabel as nib
import numpy as np
import pytest

from samia.errors import CorruptFileError, InvalidImageError, MissingFileError
from samia.io import read_image
from samia.io.npz import read_npz
from samia.io.readers import read_image_slice

VOLUME = np.random.default_rng(0).integers(0, 1000, (40, 30, 20)).astype(np.int16)  # nibabel (x, y, z)


def test_a_gz_cut_after_the_slice_read_is_refused(tmp_path) -> None:
    whole = tmp_path / "whole.nii.gz"
    nib.save(nib.Nifti1Image(VOLUME, np.eye(4)), whole)
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.85)])
    assert read_image_slice(whole, 0, 0).shape == (30, 40)  # slice 0 lies well before the cut
    with pytest.raises(CorruptFileError, match=r"cut\.nii\.gz: the gzip stream is incomplete.*truncated"):
        read_image_slice(cut, 0, 0)


def test_a_4d_nifti_with_one_volume_is_sliced_like_the_volume_reader(tmp_path) -> None:
    path = tmp_path / "one_frame.nii.gz"
    nib.save(nib.Nifti1Image(VOLUME[..., None], np.diag([0.7, 0.8, 2.5, 1.0])), path)
    volume = read_image(path)
    assert volume.shape == (20, 30, 40)
    np.testing.assert_array_equal(volume.array, VOLUME.T)  # independent: nibabel's (x, y, z) reversed
    for axis, index in ((0, 7), (1, 11), (2, 25)):
        plane = read_image_slice(path, index, axis)
        np.testing.assert_array_equal(plane.array, np.take(VOLUME.T, index, axis=axis))
        assert plane.spacing == volume.slice(index, axis).spacing


@pytest.mark.parametrize(
    ("array", "what"),
    [(np.zeros((6, 5), np.complex64), "complex"), (np.array([[1, None]], dtype=object), "Python objects")],
)
def test_npz_members_that_are_not_real_numbers_are_refused(tmp_path, array, what) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    path = tmp_path / "case.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("imgs.npy", buffer.getvalue())
    with pytest.raises(InvalidImageError, match=rf"case\.npz: array 'imgs' has dtype .*\({what}\)"):
        read_npz(path)


def test_an_npz_bomb_is_refused_from_its_header_before_anything_is_expanded(tmp_path) -> None:
    """The member declares 4 billion voxels but holds none: only the header can have been read."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("imgs.npy", "w") as stream:
        np.lib.format.write_array_header_1_0(
            stream, {"descr": "<u1", "fortran_order": False, "shape": (2000, 2000, 1000)}
        )
    with pytest.raises(InvalidImageError, match=r"bomb\.npz \(array 'imgs'\): declares 2000 x 2000 x 1000"):
        read_npz(path)


def test_a_link_that_loops_is_named_as_such(tmp_path) -> None:
    loop = tmp_path / "loop.nii.gz"
    os.symlink(loop, loop)
    with pytest.raises(MissingFileError, match=r"loop\.nii\.gz: is a symbolic link whose target is missing or loops"):
        read_image(loop)


def test_a_dataset_with_a_looping_link_records_it_and_goes_on(tmp_path) -> None:
    from PIL import Image

    from samia.evaluation import EvaluationConfig, evaluate

    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    mask = np.zeros((48, 48), np.uint8)
    mask[10:30, 12:34] = 1
    Image.fromarray((mask * 150 + 40).astype(np.uint8)).save(data / "images" / "good.png")
    Image.fromarray(mask).save(data / "masks" / "good.png")
    for folder in ("images", "masks"):
        os.symlink(data / folder / "bad.png", data / folder / "bad.png")
    outcome = evaluate(
        EvaluationConfig.from_dict(
            dict(data=str(data), out=str(tmp_path / "run"), model="tiny_sam", strategies=["box"])
        )
    )
    errors = (tmp_path / "run" / "errors.csv").read_text()
    assert "bad.png" in errors and "loops back to itself" in errors
    assert outcome is not None and (tmp_path / "run" / "results.parquet").exists()


def test_npz_boxes_that_are_not_pixel_indices_are_one_line(tmp_path) -> None:
    from samia.io.npz import read_boxes

    path = tmp_path / "case.npz"
    np.savez(path, imgs=np.zeros((20, 20, 3), np.uint8), boxes=np.array([[2, 2, 9, 9], [5.5, np.nan, 12, 12]]))
    with pytest.raises(InvalidImageError, match=r"case\.npz: 'boxes' row 1 is \[5\.5, nan, 12\.0, 12\.0\]"):
        read_boxes(path)
