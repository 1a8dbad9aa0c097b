import numpy as np
import pytest

from samia.errors import ConfigurationError
from samia.prompts import STRATEGIES, centroid_point, deepest_point, get_strategy, tight_box


def test_tight_box_is_inclusive_xyxy():
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:21] = True  # rows 5..8, cols 10..20
    np.testing.assert_array_equal(tight_box(mask), [10, 5, 20, 8])


def test_centroid_of_a_convex_object():
    mask = np.zeros((21, 21), bool)
    mask[5:16, 3:14] = True
    point, rule = centroid_point(mask)
    np.testing.assert_array_equal(point, [8, 10])
    assert rule == "centroid"


def test_ring_falls_back_to_the_deepest_interior_point():
    yy, xx = np.mgrid[:41, :41]
    radius = np.hypot(yy - 20, xx - 20)
    ring = (radius >= 10) & (radius <= 16)
    point, rule = centroid_point(ring)
    assert rule == "deepest_interior"
    x, y = point.astype(int)
    assert ring[y, x]
    assert 12 <= np.hypot(y - 20, x - 20) <= 14  # the middle of the ring's width


def test_deepest_point_of_a_rectangle_is_its_middle():
    mask = np.zeros((30, 30), bool)
    mask[10:21, 4:9] = True  # 11 rows x 5 cols: deepest column is 6, rows 12..18 tie
    x, y = deepest_point(mask)
    assert x == 6 and 12 <= y <= 18 and mask[int(y), int(x)]


def test_empty_mask_is_rejected():
    with pytest.raises(ValueError, match="empty"):
        tight_box(np.zeros((4, 4), bool))


def test_strategies_make_prompts():
    mask = np.zeros((32, 32), bool)
    mask[4:12, 6:20] = True
    rng = np.random.default_rng(0)
    (box,) = STRATEGIES["box"](mask, rng)
    np.testing.assert_array_equal(box.box, [6, 4, 19, 11])
    (point,) = STRATEGIES["point1"](mask, rng)
    assert point.labels.tolist() == [1] and point.meta == {"point_rule": "centroid"}
    with pytest.raises(ConfigurationError, match="box"):
        get_strategy("box_jiter")
