import numpy as np
import pytest
import torch

from samia.transforms.geometry import Letterbox


@pytest.mark.parametrize(
    "shape, size, resized",
    [
        ((300, 400), 256, (192, 256)),
        ((400, 300), 1024, (1024, 768)),
        ((256, 256), 256, (256, 256)),
        ((181, 217), 256, (214, 256)),
    ],
)
def test_longest_side_resize(shape, size, resized):
    assert Letterbox.for_shape(shape, size).resized_shape == resized


def test_points_and_boxes_scale_with_the_image():
    box = Letterbox.for_shape((300, 400), 256)
    np.testing.assert_allclose(box.points_to_input(np.array([[400.0, 300.0]])), [[256.0, 192.0]])
    np.testing.assert_allclose(box.boxes_to_input(np.array([100.0, 50.0, 200.0, 150.0])), [64.0, 32.0, 128.0, 96.0])


def test_logits_map_back_to_the_original_grid():
    letterbox = Letterbox.for_shape((300, 400), 256)
    # a square of positive logits over the resized content region maps to the same region
    low_res = -torch.ones(1, 1, 64, 64)
    low_res[..., 8:24, 16:32] = 1.0  # 256/64 = 4 px per cell: input rows 32..96, cols 64..128
    mask = (letterbox.logits_to_original(low_res) > 0)[0, 0].numpy()
    assert mask.shape == (300, 400)
    rows, cols = np.nonzero(mask)
    assert abs(rows.min() - 50) <= 3 and abs(rows.max() - 150) <= 3
    assert abs(cols.min() - 100) <= 3 and abs(cols.max() - 200) <= 3
    # the padded area (model rows >= 192) never leaks into the image
    padded_only = -torch.ones(1, 1, 64, 64)
    padded_only[..., 50:, :] = 5.0
    assert not (letterbox.logits_to_original(padded_only) > 0).any()
