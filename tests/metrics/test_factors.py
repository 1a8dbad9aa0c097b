"""Object factors against shapes and images whose answers are known by hand."""

import math

import numpy as np
import pytest

from samia.metrics.factors import (
    FACTOR_NAMES,
    efd_order,
    efd_reconstruction_errors,
    elliptic_fourier_descriptors,
    object_factors,
    outer_contour,
)
from samia.types import Image2D

SIZE = 160
YY, XX = np.mgrid[:SIZE, :SIZE]
RADIUS = np.hypot(YY - 80, XX - 80)
ANGLE = np.arctan2(YY - 80, XX - 80)
DISK = RADIUS < 30
ELLIPSE = ((YY - 80) / 15) ** 2 + ((XX - 80) / 45) ** 2 < 1
STAR = RADIUS < 45 + 18 * np.cos(5 * ANGLE)


def _flat(value: float = 0.0) -> Image2D:
    return Image2D(np.full((SIZE, SIZE), value) + np.linspace(0, 1, SIZE)[None, :] * 1e-3)


def test_keys_and_sizes():
    factors = object_factors(Image2D(np.random.default_rng(0).random((SIZE, SIZE)), spacing=(0.5, 2.0)), DISK)
    assert tuple(factors) == FACTOR_NAMES
    assert factors["area_px"] == DISK.sum()
    assert factors["area_mm2"] == pytest.approx(DISK.sum() * 1.0)
    assert factors["area_fraction"] == pytest.approx(DISK.sum() / SIZE**2)
    assert factors["n_components"] == 1


@pytest.mark.parametrize(
    ("mask", "iso", "aspect", "order"),
    [
        (DISK, (0.95, 1.05), (0.99, 1.01), (1, 1)),
        (ELLIPSE, (0.6, 0.75), (2.9, 3.1), (2, 3)),  # a 3:1 ellipse: isoperimetric 4*pi*ab / P^2 = 0.68
        (STAR, (0.2, 0.5), (0.95, 1.05), (5, 8)),  # five lobes need at least 5 harmonics
    ],
    ids=["disk", "ellipse_3to1", "star"],
)
def test_shape_factors_of_known_shapes(mask, iso, aspect, order):
    factors = object_factors(_flat(), mask)
    assert iso[0] <= factors["isoperimetric_ratio"] <= iso[1]
    assert aspect[0] <= factors["aspect_ratio"] <= aspect[1]
    assert order[0] <= factors["efd_order"] <= order[1]


def test_rotation_does_not_change_the_ellipse():
    rotated = ((XX - 80) / 15) ** 2 + ((YY - 80) / 45) ** 2 < 1
    a, b = object_factors(_flat(), ELLIPSE), object_factors(_flat(), rotated)
    for name in ("aspect_ratio", "isoperimetric_ratio", "efd_order", "area_px"):
        assert a[name] == pytest.approx(b[name], rel=1e-6)


def test_efd_order_grows_with_the_number_of_lobes_and_with_the_accuracy_asked():
    orders = [efd_order(RADIUS < 45 + 15 * np.cos(k * ANGLE)) for k in (3, 5, 8)]
    assert orders == sorted(orders) and orders[0] < orders[-1]
    assert efd_order(STAR, relative_tolerance=0.005, min_tolerance_px=0.25) > efd_order(STAR)
    assert efd_order(STAR, max_order=2) == 2  # the cap


def test_efd_descriptors_of_a_circle_are_one_harmonic():
    contour = outer_contour(DISK)
    mean, cos_terms, sin_terms, length = elliptic_fourier_descriptors(contour, 4)
    np.testing.assert_allclose(mean, [80, 80], atol=0.05)
    assert length == pytest.approx(2 * math.pi * 30, rel=0.06)  # the marching-squares polygon zigzags a little
    first = np.hypot(cos_terms[0], sin_terms[0])
    assert first == pytest.approx([30, 30], rel=0.03)
    assert np.abs(cos_terms[1:]).max() < 0.5 and np.abs(sin_terms[1:]).max() < 0.5
    errors = list(efd_reconstruction_errors(contour, 4, step=0.2))
    assert errors[0] < 0.3 and len(errors) == 4


def test_contrast_planted():
    image = np.where(DISK, 0.7, 0.2)
    image[:, :40] = 1.0  # a bright band far from the object sets p99.5 to 1
    image[:, -40:] = 0.0  # a dark band sets p0.5 to 0
    factors = object_factors(Image2D(image), DISK)
    assert factors["contrast"] == pytest.approx(0.5, abs=1e-9)
    same = object_factors(Image2D(np.where(DISK, 0.2, 0.2) + (XX < 40)), DISK)
    assert same["contrast"] == pytest.approx(0.0, abs=1e-9)


def test_contrast_ring_excludes_a_gap_around_the_object():
    image = np.zeros((SIZE, SIZE))
    image[DISK] = 1.0
    halo = (RADIUS >= 30) & (RADIUS < 31.5)  # partial-volume pixels just outside the object
    image[halo] = 1.0
    assert object_factors(Image2D(image), DISK)["contrast"] == pytest.approx(1.0)
    assert object_factors(Image2D(image), DISK, gap_px=0)["contrast"] < 1.0


def test_rgb_uses_luminance():
    gray = np.where(DISK, 200.0, 50.0)
    gray[:, :30] = 255.0
    gray[:, -30:] = 0.0
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.uint8)
    assert object_factors(Image2D(rgb), DISK)["contrast"] == pytest.approx(
        object_factors(Image2D(gray), DISK)["contrast"], rel=1e-6
    )


def test_components_and_border_objects():
    two = (np.hypot(YY - 30, XX - 30) < 10) | (np.hypot(YY - 120, XX - 120) < 10)
    assert object_factors(_flat(), two)["n_components"] == 2
    touching = np.hypot(YY, XX - 80) < 20  # cut by the top border
    factors = object_factors(_flat(), touching)
    assert all(np.isfinite(v) for k, v in factors.items() if k != "contrast")


def test_degenerate_inputs():
    with pytest.raises(ValueError, match="empty"):
        object_factors(_flat(), np.zeros((SIZE, SIZE), bool))
    with pytest.raises(ValueError, match="shape"):
        object_factors(_flat(), np.ones((4, 4), bool))
    assert math.isnan(object_factors(Image2D(np.ones((SIZE, SIZE))), DISK)["contrast"])  # no intensity spread
    line = (YY == 80) & (XX > 20) & (XX < 140)
    assert object_factors(_flat(), line)["aspect_ratio"] == pytest.approx(119, rel=0.01)  # finite for a 1-px line
