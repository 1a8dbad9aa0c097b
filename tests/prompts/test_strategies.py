import numpy as np
import pytest

from samia.errors import ConfigurationError
from samia.prompts import (
    STRATEGIES,
    JitterBand,
    ProtocolSettings,
    build_strategies,
    enlarged_box,
    negative_points,
    positive_points,
    stride_sample,
    tight_box,
)

PAPER_ORDER = [
    "everything",
    "point1",
    "point5",
    "point5_neg5",
    "box",
    "box_point1",
    "box_jitter",
    "point_jitter",
    "clicks",
]


def _rectangle(shape=(40, 60), rows=(10, 20), cols=(20, 40)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_registry_has_the_papers_protocol():
    assert list(STRATEGIES) == PAPER_ORDER
    assert {s.kind for s in STRATEGIES.values()} == {"static", "clicks", "everything"}


def test_stride_sample_takes_the_middle_of_equal_runs():
    pixels = np.stack([np.zeros(10, int), np.arange(10)], axis=1)  # (y=0, x=0..9)
    np.testing.assert_array_equal(stride_sample(pixels, 2), [[2, 0], [7, 0]])  # indices 2 and 7
    assert len(stride_sample(pixels, 20)) == 10 and len(stride_sample(pixels, 0)) == 0


def test_point5_is_centroid_then_stride_over_the_object():
    mask = _rectangle()
    points, rule = positive_points(mask, 5)
    assert rule == "centroid" and points.shape == (5, 2)
    np.testing.assert_array_equal(points[0], [30, 14])  # the centroid (29.5, 14.5), rounded half to even
    assert all(mask[int(y), int(x)] for x, y in points)
    # 199 other pixels in raster order, 4 picks at floor((i + 0.5) * 199 / 4): 24, 74, 124, 174
    others = np.argwhere(mask)
    others = others[~((others[:, 0] == 14) & (others[:, 1] == 30))]
    np.testing.assert_array_equal(points[1:], others[[24, 74, 124, 174]][:, ::-1])


def test_negatives_lie_on_background_inside_the_doubled_box():
    mask = _rectangle()
    box = enlarged_box(tight_box(mask), 2.0, mask.shape)
    np.testing.assert_array_equal(box, [10, 5, 49, 24])  # (20..39, 10..19) doubled about (29.5, 14.5)
    negatives = negative_points(mask, 5)
    assert len(negatives) == 5
    for x, y in negatives:
        assert not mask[int(y), int(x)] and box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_negatives_are_clipped_at_the_image_border():
    mask = _rectangle(rows=(0, 6), cols=(0, 8))
    x0, y0, x1, y1 = enlarged_box(tight_box(mask), 2.0, mask.shape)
    assert x0 == 0 and y0 == 0
    assert all(not mask[int(y), int(x)] for x, y in negative_points(mask, 5))


def test_static_strategies_make_their_prompts():
    mask = _rectangle()
    rng = np.random.default_rng(0)
    (box_point,) = STRATEGIES["box_point1"](mask, rng)
    np.testing.assert_array_equal(box_point.box, [20, 10, 39, 19])
    assert box_point.labels.tolist() == [1]
    (neg,) = STRATEGIES["point5_neg5"](mask, rng)
    assert neg.labels.tolist() == [1] * 5 + [0] * 5


@pytest.mark.parametrize("unit", ["px", "percent"])
def test_box_jitter_stays_in_its_bands(unit):
    mask = _rectangle(shape=(200, 200), rows=(80, 120), cols=(60, 140))  # box 80 x 40 px
    settings = ProtocolSettings(jitter_bands=(JitterBand(0, 5, unit), JitterBand(10, 20, unit)), jitter_repeats=4)
    (strategy,) = build_strategies(["box_jitter"], settings)
    prompts = strategy(mask, np.random.default_rng(1))
    assert len(prompts) == 8
    box = tight_box(mask)
    scale = np.array([80, 40, 80, 40]) / 100 if unit == "percent" else np.ones(4)
    for prompt, band in zip(prompts, [settings.jitter_bands[0]] * 4 + [settings.jitter_bands[1]] * 4):
        shift = np.abs(prompt.box - box) / scale
        assert (shift >= band.low - 1e-9).all() and (shift < band.high).all()
        assert prompt.meta["jitter_band"] == band.label
        assert prompt.meta["jitter_offset_px"] == pytest.approx(np.abs(prompt.box - box).mean())


def test_point_jitter_moves_the_point_by_the_band():
    mask = _rectangle(shape=(200, 200), rows=(80, 120), cols=(60, 140))
    (strategy,) = build_strategies(
        ["point_jitter"], ProtocolSettings(jitter_bands=(JitterBand(10, 20),), jitter_repeats=5)
    )
    centre, _ = positive_points(mask, 1)
    for prompt in strategy(mask, np.random.default_rng(2)):
        distance = np.hypot(*(prompt.points[0] - centre[0]))
        assert 10 <= distance < 20 and distance == pytest.approx(prompt.meta["jitter_offset_px"])


def test_jitter_is_seeded():
    mask = _rectangle()
    first = STRATEGIES["box_jitter"](mask, np.random.default_rng(5))
    again = STRATEGIES["box_jitter"](mask, np.random.default_rng(5))
    other = STRATEGIES["box_jitter"](mask, np.random.default_rng(6))
    assert all(np.array_equal(a.box, b.box) for a, b in zip(first, again))
    assert not all(np.array_equal(a.box, b.box) for a, b in zip(first, other))


def test_bad_settings_are_clear():
    with pytest.raises(ConfigurationError, match="LOW-HIGH"):
        JitterBand.parse("ten")
    with pytest.raises(ConfigurationError, match="low < high"):
        JitterBand(20, 10)
    with pytest.raises(TypeError, match="clicks"):
        STRATEGIES["clicks"](_rectangle(), np.random.default_rng(0))
