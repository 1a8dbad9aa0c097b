"""Reading 2D files (PNG, JPEG, BMP, TIFF) through read_image / read_label."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import tifffile
from PIL import Image

from samia.errors import CorruptFileError, InvalidImageError, UnsupportedFormatError
from samia.io import read_image, read_label
from samia.types import Image2D

GRAY = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10) * 2
RGB = np.stack([GRAY, 255 - GRAY, np.full_like(GRAY, 7)], axis=-1)


def test_png_8bit_gray(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(GRAY).save(path)
    image = read_image(path)
    assert isinstance(image, Image2D)
    assert image.array.dtype == np.uint8
    np.testing.assert_array_equal(image.array, GRAY)
    assert image.spacing == (1.0, 1.0)
    assert image.modality == "other"
    assert image.path == str(path)


def test_png_16bit_gray_keeps_dtype_and_values(tmp_path):
    values = np.arange(120, dtype=np.uint16).reshape(12, 10) * 500  # up to 59500
    path = tmp_path / "gray16.png"
    Image.fromarray(values).save(path)
    image = read_image(path)
    assert image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.array, values)


def test_png_rgb_and_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([RGB, np.full(GRAY.shape + (1,), 9, np.uint8)], axis=-1)
    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        image = read_image(tmp_path / name)
        assert image.array.shape == (12, 10, 3) and image.array.dtype == np.uint8
        np.testing.assert_array_equal(image.array, RGB)


def test_gray_with_alpha_becomes_gray(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.stack([GRAY, np.full_like(GRAY, 3)], axis=-1), mode="LA").save(path)
    np.testing.assert_array_equal(read_image(path).array, GRAY)


def test_palette_png_is_rgb_for_images_and_indices_for_labels(tmp_path):
    indices = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    palette = [0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * (256 * 3 - 9)
    path = tmp_path / "palette.png"
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette)
    image.save(path)

    colours = read_image(path).array
    assert colours.shape == (2, 3, 3)
    np.testing.assert_array_equal(colours[0, 1], [200, 10, 10])
    np.testing.assert_array_equal(colours[0, 2], [10, 200, 10])

    labels = read_label(path).array
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, indices)


def test_one_bit_png_reads_as_zero_one(tmp_path):
    mask = GRAY > 100
    path = tmp_path / "bits.png"
    Image.fromarray(mask).save(path)
    array = read_image(path).array
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, mask.astype(np.uint8))


def test_jpeg_gray_and_rgb(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (24, 1))
    Image.fromarray(smooth).save(tmp_path / "gray.jpg", quality=95)
    Image.fromarray(np.stack([smooth, smooth[::-1], 255 - smooth], axis=-1)).save(tmp_path / "rgb.jpeg", quality=95)
    gray = read_image(tmp_path / "gray.jpg").array
    rgb = read_image(tmp_path / "rgb.jpeg").array
    assert gray.shape == (24, 32) and rgb.shape == (24, 32, 3)
    assert np.abs(gray.astype(int) - smooth).max() <= 3  # lossy, but close


def test_bmp(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "image.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "image.bmp").array, RGB)


def test_tiff_16bit_and_float_and_rgb(tmp_path):
    values16 = np.arange(120, dtype=np.uint16).reshape(12, 10) * 541
    values32 = np.linspace(-1.5, 2.5, 120, dtype=np.float32).reshape(12, 10)
    tifffile.imwrite(tmp_path / "gray16.tif", values16)
    tifffile.imwrite(tmp_path / "float.tiff", values32)
    tifffile.imwrite(tmp_path / "rgb16.tif", RGB.astype(np.uint16) * 257, photometric="rgb")

    gray16 = read_image(tmp_path / "gray16.tif").array
    assert gray16.dtype == np.uint16
    np.testing.assert_array_equal(gray16, values16)
    np.testing.assert_array_equal(read_image(tmp_path / "float.tiff").array, values32)
    rgb16 = read_image(tmp_path / "rgb16.tif").array
    assert rgb16.dtype == np.uint16 and rgb16.shape == (12, 10, 3)
    np.testing.assert_array_equal(rgb16, RGB.astype(np.uint16) * 257)


def test_planar_rgba_tiff(tmp_path):
    planar = np.moveaxis(np.concatenate([RGB, np.full(GRAY.shape + (1,), 255, np.uint8)], axis=-1), -1, 0)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, planar, photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(path).array, RGB)


def test_multipage_tiff_is_invalid(tmp_path):
    path = tmp_path / "stack.tif"
    with tifffile.TiffWriter(path) as writer:
        for page in range(3):
            writer.write(GRAY + page)
    with pytest.raises(InvalidImageError) as caught:
        read_image(path)
    assert "stack.tif" in str(caught.value)
    assert "3 page(s)" in str(caught.value)


def test_multichannel_tiff_is_invalid(tmp_path):
    path = tmp_path / "channels.tif"
    tifffile.imwrite(path, np.zeros((5, 12, 10), np.uint16), photometric="minisblack", planarconfig="separate")
    with pytest.raises(InvalidImageError, match=r"channels\.tif.*not stacks"):
        read_image(path)


def test_truncated_png_is_corrupt(tmp_path):
    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(whole)
    path = tmp_path / "truncated.png"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptFileError) as caught:
        read_image(path)
    assert "truncated.png" in str(caught.value) and "cannot be decoded" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_garbage_tiff_is_corrupt(tmp_path):
    path = tmp_path / "garbage.tif"
    path.write_bytes(b"this is not a tiff file at all")
    with pytest.raises(CorruptFileError, match=r"garbage\.tif.*cannot be decoded as TIFF"):
        read_image(path)


def test_tiff_needing_imagecodecs_is_unsupported(tmp_path):
    if importlib.util.find_spec("imagecodecs") is not None:
        pytest.skip("imagecodecs is installed, so LZW TIFF files decode")
    path = tmp_path / "lzw.tif"
    Image.fromarray(GRAY).save(path, compression="tiff_lzw")
    with pytest.raises(UnsupportedFormatError, match=r"lzw\.tif.*imagecodecs"):
        read_image(path)


def test_inf_in_float_tiff_is_invalid(tmp_path):
    values = np.zeros((6, 5), np.float32)
    values[1, 1] = np.inf
    values[2, 3] = -np.inf
    values[4, 0] = np.nan
    path = tmp_path / "inf.tif"
    tifffile.imwrite(path, values)
    with pytest.raises(InvalidImageError) as caught:
        read_image(path)
    assert "inf.tif" in str(caught.value) and "contains 3 NaN/Inf pixels" in str(caught.value)


def test_palette_tiff_is_rgb_for_images_and_indices_for_labels(tmp_path):
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, 1] = [65535, 0, 0]
    colormap[:, 2] = [0, 0, 65535]
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, indices, photometric="palette", colormap=colormap)

    colours = read_image(path).array
    assert colours.shape == (2, 2, 3) and colours.dtype == np.uint16
    np.testing.assert_array_equal(colours[1, 0], [0, 0, 65535])
    np.testing.assert_array_equal(read_label(path).array, indices)
