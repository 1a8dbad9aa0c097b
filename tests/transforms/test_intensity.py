"""Intensity presets, with hand-computed answers.

Rounding rule under test: v = rint((clip(x, lo, hi) - lo) / (hi - lo) * 255), ties to even.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from samia.errors import ConfigurationError, InvalidImageError
from samia.transforms import PRESETS, IntensityPreset, default_preset, get_preset, to_rgb_uint8
from samia.types import Image2D


def _gray(values, **kwargs) -> Image2D:
    return Image2D(np.asarray(values), **kwargs)


@pytest.mark.parametrize(
    ("preset", "hu", "expected"),
    [
        # soft tissue L40/W400 = [-160, 240]
        ("ct_soft_tissue", [-1000, -160, 0, 40, 240, 3000], [0, 0, 102, 128, 255, 255]),
        # lung L-600/W1500 = [-1350, 150]: -600 -> 127.5 -> 128, -1000 -> 59.5 -> 60 (ties to even)
        ("ct_lung", [-2000, -1350, -1000, -600, 150], [0, 0, 60, 128, 255]),
        # bone L400/W1800 = [-500, 1300]: 0 -> 70.83 -> 71
        ("ct_bone", [-500, 0, 400, 1300], [0, 71, 128, 255]),
        # brain L40/W80 = [0, 80]: 1 -> 3.19 -> 3, 20 -> 63.75 -> 64
        ("ct_brain", [-5, 0, 1, 20, 40, 80, 81], [0, 0, 3, 64, 128, 255, 255]),
    ],
)
def test_ct_windows(preset, hu, expected):
    rgb = to_rgb_uint8(_gray([hu], modality="CT"), get_preset(preset))
    assert rgb.shape == (1, len(hu), 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], expected)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_window_bounds_are_level_minus_and_plus_half_width():
    bounds = {
        name: (PRESETS[name].low, PRESETS[name].high) for name in ("ct_soft_tissue", "ct_lung", "ct_bone", "ct_brain")
    }
    assert bounds == {
        "ct_soft_tissue": (-160, 240),
        "ct_lung": (-1350, 150),
        "ct_bone": (-500, 1300),
        "ct_brain": (0, 80),
    }


def test_window_on_a_constant_image_is_a_constant_gray():
    rgb = to_rgb_uint8(_gray(np.full((3, 3), 40, np.int16)), PRESETS["ct_soft_tissue"])
    assert (rgb == 128).all()


def test_percentile_on_a_ramp():
    """Ramp 0..200 (201 values): 0.5th percentile = 1.0, 99.5th = 199.0 (linear interpolation)."""
    ramp = np.arange(201, dtype=np.float32).reshape(3, 67)
    rgb = to_rgb_uint8(_gray(ramp), PRESETS["percentile"])
    flat = rgb[..., 0].ravel()
    #          0 -> 0, 1 -> 0, 2 -> 1.29 -> 1, 50 -> 63.1 -> 63, 100 -> 127.5 -> 128, 199 -> 255, 200 -> 255
    np.testing.assert_array_equal(flat[[0, 1, 2, 50, 100, 199, 200]], [0, 0, 1, 63, 128, 255, 255])


def test_percentile_on_rgb_uses_all_channels_jointly():
    x = np.linspace(0, 100, 50)
    rgb_in = np.stack([x, x + 100, x], axis=-1)[None]  # green is brighter than red everywhere
    rgb = to_rgb_uint8(Image2D(rgb_in), PRESETS["percentile"])
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 1] == 255
    assert (rgb[0, 5:-5, 1] > rgb[0, 5:-5, 0]).all()  # per-channel scaling would make them equal
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_percentile_falls_back_to_min_max_on_a_sparse_image():
    sparse = np.zeros((40, 40), np.uint16)
    sparse[3, 4] = 50  # 1 pixel in 1600: both percentiles are 0
    rgb = to_rgb_uint8(_gray(sparse), PRESETS["percentile"])
    assert rgb[3, 4, 0] == 255 and rgb.sum() == 3 * 255


@pytest.mark.parametrize("preset", ["percentile", "passthrough"])
def test_constant_image_raises_for_range_based_presets(preset):
    image = _gray(np.full((4, 4), 7, np.uint16), path="flat.png")
    with pytest.raises(InvalidImageError) as caught:
        to_rgb_uint8(image, PRESETS[preset])
    assert str(caught.value) == "flat.png: image is constant (all pixels = 7); nothing to segment"


def test_constant_in_memory_image_is_named_array():
    with pytest.raises(InvalidImageError, match=r"^<array>: image is constant"):
        to_rgb_uint8(_gray(np.zeros((2, 2))), PRESETS["percentile"])


def test_passthrough_keeps_uint8_and_scales_other_dtypes_min_max():
    rgb8 = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    np.testing.assert_array_equal(to_rgb_uint8(Image2D(rgb8), PRESETS["passthrough"]), rgb8)

    gray8 = np.full((2, 2), 9, np.uint8)  # constant uint8 is kept, not refused
    np.testing.assert_array_equal(to_rgb_uint8(Image2D(gray8), PRESETS["passthrough"]), np.full((2, 2, 3), 9))

    gray16 = np.array([[100, 200, 300]], np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(Image2D(gray16), PRESETS["passthrough"])[0, :, 1], [0, 128, 255])

    rgb16 = np.zeros((1, 2, 3), np.uint16)
    rgb16[0, 1] = [4095, 0, 1000]  # a 12-bit image: min-max, not divided by 65535
    np.testing.assert_array_equal(to_rgb_uint8(Image2D(rgb16), PRESETS["passthrough"])[0, 1], [255, 0, 62])


def test_result_is_a_new_array():
    rgb8 = np.zeros((2, 2, 3), np.uint8)
    out = to_rgb_uint8(Image2D(rgb8), PRESETS["passthrough"])
    out[0, 0, 0] = 1
    assert rgb8[0, 0, 0] == 0


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.array([[0.0, np.nan], [np.inf, 1.0]]), "contains 2 NaN/Inf pixels"),
        (np.zeros((2, 2, 4), np.uint8), "got shape (2, 2, 4)"),
        (np.zeros((0, 3)), "got shape (0, 3)"),
    ],
)
def test_bad_arrays_are_invalid(array, problem):
    with pytest.raises(InvalidImageError) as caught:
        to_rgb_uint8(Image2D(array, path="bad.tif"), PRESETS["ct_soft_tissue"])
    assert str(caught.value).startswith("bad.tif: ") and problem in str(caught.value)


@pytest.mark.parametrize(
    ("modality", "is_rgb", "expected"),
    [
        ("CT", False, "ct_soft_tissue"),
        ("CT", True, "passthrough"),
        ("MR", False, "percentile"),
        ("US", False, "percentile"),
        ("XR", False, "percentile"),
        ("PET", False, "percentile"),
        ("other", False, "percentile"),
        ("endoscopy", True, "passthrough"),
        ("dermoscopy", True, "passthrough"),
        ("microscopy", False, "percentile"),
    ],
)
def test_default_preset(modality, is_rgb, expected):
    assert default_preset(modality, is_rgb).name == expected


def test_default_preset_unknown_modality():
    with pytest.raises(ConfigurationError, match="unknown modality 'ct'"):
        default_preset("ct", False)


def test_get_preset_unknown_lists_names():
    with pytest.raises(ConfigurationError) as caught:
        get_preset("ct_liver")
    assert "ct_liver" in str(caught.value) and all(name in str(caught.value) for name in PRESETS)


def test_to_record_is_json_ready():
    assert PRESETS["ct_soft_tissue"].to_record() == {
        "name": "ct_soft_tissue",
        "kind": "window",
        "low": -160,
        "high": 240,
    }
    assert PRESETS["percentile"].to_record() == {"name": "percentile", "kind": "percentile", "low": 0.5, "high": 99.5}
    assert PRESETS["passthrough"].to_record() == {
        "name": "passthrough",
        "kind": "passthrough",
        "low": None,
        "high": None,
    }
    json.dumps([preset.to_record() for preset in PRESETS.values()])


def test_custom_window_and_invalid_presets():
    liver = IntensityPreset.window("ct_liver", level=60, width=160)
    assert (liver.low, liver.high) == (-20, 140)
    with pytest.raises(ConfigurationError, match="unknown kind"):
        IntensityPreset("x", "gamma", 0, 1)
    with pytest.raises(ConfigurationError, match="low < high"):
        IntensityPreset("x", "window", 10, 10)
    with pytest.raises(ConfigurationError, match="0..100"):
        IntensityPreset("x", "percentile", 1, 101)
    with pytest.raises(ConfigurationError, match="takes no low/high"):
        IntensityPreset("x", "passthrough", 0, 1)
