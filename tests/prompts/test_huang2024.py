"""``--protocol huang2024`` against an independent transcription of the released code.

``released_point_table`` below is written line by line from ``find_center_from_mask_new`` and
``limit_rect`` of ``utils/get_prompts.py`` (yuhoo0302/Segment-Anything-Model-for-Medical-Images),
with OpenCV's moments as there; ``released_preprocess`` from ``pre_grey_rgb2D.py``; ``released_dice``
from ``test_only_box.py``. None of them calls samia.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, evaluate
from samia.io import write_label_map
from samia.predictor import Prediction
from samia.prompts import build_strategies
from samia.prompts.huang2024 import point_table
from samia.selection import choose_candidate
from samia.transforms import get_preset, to_rgb_uint8
from samia.types import Image2D


def released_limit_rect(mask, box_ratio):
    height, width = mask.shape[0], mask.shape[1]
    y, x = np.where(mask == 1)
    box = [x.min(), y.min(), x.max(), y.max()]
    w, h = box[2] - box[0], box[3] - box[1]
    w_ratio = w * box_ratio
    h_ratio = h * box_ratio
    x1 = box[0] - w_ratio / 2 + w / 2
    y1 = box[1] - h_ratio / 2 + h / 2
    x2 = x1 + w_ratio
    y2 = y1 + h_ratio
    if x1 < 0:
        x1 = 0
    if y1 < 0:
        y1 = 0
    if x2 >= width:
        x2 = width
    if y2 >= height:
        y2 = height
    return x1, y1, x2 - x1, y2 - y1


def released_point_table(mask, box_ratio=2, n_fg=5, n_bg=5):
    mask = mask.astype(np.uint8)
    M = cv2.moments(mask)
    cX = int(M["m10"] / M["m00"])
    cY = int(M["m01"] / M["m00"])
    center_point = np.array([cX, cY]).reshape(1, 2)
    indices_fg = np.where(mask == 1)
    points_fg = np.column_stack((indices_fg[1], indices_fg[0]))
    step_fg = int(len(points_fg) / n_fg)
    points_fg = points_fg[::step_fg, :]
    x, y, w, h = released_limit_rect(mask, box_ratio)
    x, y, w, h = int(x), int(y), int(w), int(h)
    yy, xx = np.meshgrid(np.arange(x, x + w), np.arange(y, y + h))
    roi = mask[y : y + h, x : x + w]
    bool_mask = roi == 0
    points_bg = np.column_stack((yy[bool_mask], xx[bool_mask]))
    step_bg = int(len(points_bg) / n_bg)
    points_bg = points_bg[::step_bg, :]
    points_fg = np.concatenate((center_point, points_fg[1:]), axis=0)
    point_coords = np.concatenate((points_fg, points_bg), axis=0)
    point_labels = np.concatenate((np.ones(n_fg), np.zeros(n_bg)), axis=0)
    return point_coords, point_labels


def released_preprocess(image_data):
    if len(image_data.shape) == 2:
        image_data = np.repeat(image_data[:, :, None], 3, axis=-1)
    lower_bound, upper_bound = np.percentile(image_data, 0.95), np.percentile(image_data, 99.5)
    image_data_pre = np.clip(image_data, lower_bound, upper_bound)
    image_data_pre = (
        (image_data_pre - np.min(image_data_pre)) / (np.max(image_data_pre) - np.min(image_data_pre)) * 255.0
    )
    image_data_pre[image_data == 0] = 0
    return np.uint8(image_data_pre)


def released_dice(y_true, y_pred):
    smooth = 0.1
    y_true_f = y_true.reshape(y_true.shape[0], -1)
    y_pred_f = y_pred.reshape(y_pred.shape[0], -1)
    intersection = np.matmul(y_true_f.astype(float), y_pred_f.T.astype(float))
    dice_matrix = (2.0 * intersection + smooth) / (
        y_true_f.sum(1).reshape(y_true_f.shape[0], -1) + y_pred_f.sum(1) + smooth
    )
    return dice_matrix.argmax(1), dice_matrix.max(1)


def _rect(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


S = (48, 56)
MASKS = {
    "odd_square": _rect(S, slice(10, 19), slice(20, 29)),  # 81 px, centre exact
    "even_rect_half_centre": _rect(S, slice(10, 18), slice(20, 32)),  # mean x = 25.5: int() vs rounding
    "area_divisible_by_5": _rect(S, slice(5, 15), slice(5, 15)),  # 100 px: exactly 5 foreground rows
    "ring": _disk(S, (24, 28), 11) & ~_disk(S, (24, 28), 6),  # centre in the hole
    "crescent": _disk(S, (24, 28), 12) & ~_disk(S, (20, 33), 10),
    "two_components": _rect(S, slice(4, 12), slice(4, 12)) | _rect(S, slice(30, 40), slice(40, 50)),
    "top_left_border": _rect(S, slice(0, 9), slice(0, 13)),  # enlarged box clipped at 0
    "bottom_right_border": _rect(S, slice(38, 48), slice(44, 56)),  # clipped at the width/height
    "two_rows": _rect(S, slice(20, 22), slice(3, 50)),  # h = 1: a two-row background window
}
for seed in range(4):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(S), 3)
    MASKS[f"blob_{seed}"] = ndimage.binary_opening(field > np.quantile(field, 0.8))


@pytest.mark.parametrize("name", sorted(MASKS))
def test_point_table_is_the_released_codes(name: str) -> None:
    mask = MASKS[name]
    expected_coords, expected_labels = released_point_table(mask)
    coords, labels = point_table(mask)
    np.testing.assert_array_equal(coords, expected_coords)
    np.testing.assert_array_equal(labels, expected_labels)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_strategies_take_the_released_rows(name: str) -> None:
    mask = MASKS[name]
    coords, labels = released_point_table(mask)
    strategies = {
        s.name: s
        for s in build_strategies(["point1", "point5", "point5_neg5", "box", "box_point1"], protocol="huang2024")
    }
    rng = np.random.default_rng(0)
    for strategy, k in (("point1", 1), ("point5", 5), ("point5_neg5", 10)):
        (prompt,) = strategies[strategy](mask, rng)
        np.testing.assert_array_equal(prompt.points, coords[:k])
        np.testing.assert_array_equal(prompt.labels, labels[:k])
    ys, xs = np.where(mask)
    (box,) = strategies["box"](mask, rng)
    np.testing.assert_array_equal(box.box, [xs.min(), ys.min(), xs.max(), ys.max()])
    (box_point,) = strategies["box_point1"](mask, rng)
    np.testing.assert_array_equal(box_point.points, coords[:1])
    np.testing.assert_array_equal(box_point.box, box.box)


def test_a_sixth_object_point_gets_label_zero_as_in_the_released_code() -> None:
    mask = MASKS["odd_square"]  # 81 px: stride 16, foreground rows 0, 16, ..., 80 (six)
    (prompt,) = build_strategies(["point5_neg5"], protocol="huang2024")[0](mask, np.random.default_rng(0))
    x, y = prompt.points[5].astype(int)
    assert mask[y, x] and prompt.labels[5] == 0
    assert prompt.meta["huang2024_object_points_labelled_negative"] == 1


def test_where_the_released_code_crashes_samia_gives_fewer_negatives() -> None:
    """A one-row object: the released window has height int(0) = 0, no background, stride 0."""
    line = _rect(S, slice(20, 21), slice(3, 50))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        released_point_table(line)
    (prompt,) = build_strategies(["point5_neg5"], protocol="huang2024")[0](line, np.random.default_rng(0))
    assert len(prompt.points) == len(prompt.labels) and (prompt.labels[:5] == 1).all()


def test_the_rules_differ_from_samias_own_on_these_masks() -> None:
    """What the protocol changes: at least one of the hand-made masks gets another first point."""
    differing = 0
    for mask in MASKS.values():
        ours = build_strategies(["point5"])[0](mask, np.random.default_rng(0))[0].points
        theirs = build_strategies(["point5"], protocol="huang2024")[0](mask, np.random.default_rng(0))[0].points
        differing += not np.array_equal(ours, theirs)
    assert differing == len(MASKS)


@pytest.mark.parametrize("kind", ["gray_uint8", "gray_uint16", "rgb_uint8", "float_with_zeros"])
def test_huang2024_preset_is_the_released_preprocessing(kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "gray_uint8":
        image = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    elif kind == "gray_uint16":
        image = rng.integers(0, 4096, (40, 50), dtype=np.uint16)
    elif kind == "rgb_uint8":
        image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    else:
        image = rng.normal(100, 30, (40, 50))
        image[:10] = 0.0
    expected = released_preprocess(image)
    np.testing.assert_array_equal(to_rgb_uint8(Image2D(image), get_preset("huang2024")), expected)


def test_oracle_ranks_candidates_by_the_released_smoothed_dice() -> None:
    truth = np.zeros((20, 20), bool)
    truth[5:10, 5:10] = True
    near = np.zeros_like(truth)
    near[5:10, 5:11] = True  # Dice 0.909
    exact = truth.copy()
    empty = np.zeros_like(truth)
    for candidates in ([near, exact, empty], [empty, near, near], [exact, exact, near], [empty, empty, empty]):
        stack = np.stack(candidates)
        prediction = Prediction(stack, np.zeros(3, np.float32), np.zeros((3, 4, 4), np.float32))
        index, _ = released_dice(truth[None], stack)
        chosen, _ = choose_candidate(prediction, truth, "oracle", oracle_smoothing=0.1)
        assert chosen == int(index[0])


def test_huang2024_drops_objects_of_50_pixels_or_fewer(tmp_path) -> None:
    """An object of exactly 50 px: kept by samia's rule (>= 50), dropped by the released code (<= 50)."""
    images, labels = tmp_path / "data" / "images", tmp_path / "data" / "masks"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    image = np.random.default_rng(0).integers(1, 255, (64, 64)).astype(np.uint8)
    label = np.zeros((64, 64), np.uint8)
    label[5:10, 5:15] = 1  # 50 px
    label[30:50, 30:50] = 2  # 400 px
    Image.fromarray(image).save(images / "case.png")
    write_label_map(labels / "case.png", label)
    settings = dict(data=str(tmp_path / "data"), model="tiny_sam", strategies=["point5_neg5", "box"])
    ours = evaluate(EvaluationConfig.from_dict(dict(out=str(tmp_path / "samia"), **settings))).results
    theirs = evaluate(
        EvaluationConfig.from_dict(dict(out=str(tmp_path / "huang"), protocol="huang2024", **settings))
    ).results
    assert sorted(ours["label"].unique()) == [1, 2]
    assert sorted(theirs["label"].unique()) == [2]
    row = theirs[(theirs["strategy"] == "point5_neg5") & (theirs["selection"] == "oracle")].iloc[0]
    coords, point_labels = released_point_table(label == 2)
    prompt = json.loads(row["prompt"])
    np.testing.assert_array_equal(np.array(prompt["points"]), coords[:10])
    assert prompt["labels"] == point_labels[:10].astype(int).tolist()
    assert (theirs["preset"] == "huang2024").all() and (theirs["protocol"] == "huang2024").all()


def test_huang2024_refuses_options_it_fixes(tmp_path) -> None:
    for contradiction in ({"min_area": 10}, {"preset": "percentile"}, {"connected_components": True}):
        with pytest.raises(ConfigurationError, match="huang2024 protocol fixes"):
            EvaluationConfig.from_dict(
                dict(
                    data=str(tmp_path),
                    out=str(tmp_path / "o"),
                    model="tiny_sam",
                    strategies=["box"],
                    protocol="huang2024",
                    **contradiction,
                )
            )
