import numpy as np
import pytest
import torch

from samia.transforms.geometry import Letterbox, input_geometry


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
    low_res = -np.ones((1, 1, 64, 64), np.float32)
    low_res[..., 8:24, 16:32] = 1.0  # 256/64 = 4 px per cell: input rows 32..96, cols 64..128
    mask = (letterbox.logits_to_original(low_res) > 0)[0, 0]
    assert mask.shape == (300, 400)
    rows, cols = np.nonzero(mask)
    assert abs(rows.min() - 50) <= 3 and abs(rows.max() - 150) <= 3
    assert abs(cols.min() - 100) <= 3 and abs(cols.max() - 200) <= 3
    # the padded area (model rows >= 192) never leaks into the image
    padded_only = -np.ones((1, 1, 64, 64), np.float32)
    padded_only[..., 50:, :] = 5.0
    assert not (letterbox.logits_to_original(padded_only) > 0).any()


@pytest.mark.parametrize(
    "pipeline, low_res, original",
    [("sam", 64, (300, 400)), ("sam", 256, (1024, 700)), ("litemedsam", 256, (181, 217)), ("medsam", 64, (90, 130))],
)
def test_logits_come_back_as_the_reference_scripts_upsample_them(pipeline, low_res, original):
    """Written from segment-anything's ``Sam.postprocess_masks`` (bilinear to S x S, crop, bilinear to
    the image), LiteMedSAM's ``postprocess_masks`` (crop, bilinear) and ``MedSAM_Inference.py``
    (sigmoid, bilinear to the image), all with ``F.interpolate(align_corners=False)``."""
    import torch.nn.functional as F

    side = 256 if pipeline == "litemedsam" else low_res * 4
    geometry = input_geometry(pipeline, original, side)
    logits = np.random.default_rng(0).normal(0, 4, (2, 3, low_res, low_res)).astype(np.float32)
    tensor = torch.from_numpy(logits)
    if pipeline == "medsam":
        probability = F.interpolate(torch.sigmoid(tensor), original, mode="bilinear", align_corners=False)
        expected_mask = (probability > 0.5).numpy()
        expected = torch.logit(probability.double(), eps=1e-12).float().numpy()
    else:
        if low_res != side:
            tensor = F.interpolate(tensor, (side, side), mode="bilinear", align_corners=False)
        height, width = geometry.resized_shape
        expected = F.interpolate(tensor[..., :height, :width], original, mode="bilinear", align_corners=False).numpy()
        expected_mask = expected > 0
    ours = geometry.logits_to_original(logits)
    assert ours.shape == (2, 3, *original) and ours.dtype == np.float32
    close = np.abs(expected) < 20  # beyond, the logit of a probability within eps of 1 saturates
    assert np.abs(ours - expected)[close].max() <= 1e-3
    assert np.count_nonzero((ours > 0) != expected_mask) <= 1e-5 * expected_mask.size
