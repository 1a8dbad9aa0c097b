"""``read_image_slice``: one slice of a volume, the same as slicing the whole, without reading it."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from samia.errors import InvalidImageError
from samia.io import read_image, read_image_slice


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.mha"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_slice_equals_the_slice_of_the_whole_volume(tmp_path, name, axis):
    array = np.random.default_rng(0).normal(size=(5, 12, 9)).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.9, 2.5))  # (x, y, z)
    sitk.WriteImage(image, str(tmp_path / name))
    whole = read_image(tmp_path / name)
    for index in (0, whole.shape[axis] - 1):
        alone = read_image_slice(tmp_path / name, index, axis)
        expected = whole.slice(index, axis)
        np.testing.assert_array_equal(alone.array, expected.array)
        assert alone.spacing == pytest.approx(expected.spacing)


def test_the_size_limit_applies_to_the_slice_and_ranges_are_checked(tmp_path, monkeypatch):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 30, 30), np.float32)), str(tmp_path / "v.nii"))
    monkeypatch.setenv("SAMIA_MAX_PIXELS", "5000")  # the volume (18000) is over it, one slice (900) not
    with pytest.raises(InvalidImageError, match="more than samia reads"):
        read_image(tmp_path / "v.nii")
    assert read_image_slice(tmp_path / "v.nii", 3).shape == (30, 30)
    with pytest.raises(InvalidImageError, match="slice 20 is outside"):
        read_image_slice(tmp_path / "v.nii", 20)
    with pytest.raises(InvalidImageError, match="axis 3"):
        read_image_slice(tmp_path / "v.nii", 0, axis=3)
