import numpy as np
import pytest
import torch

from samia.finetuning.training_prompts import TrainingPromptSampler, background_ring, error_region_clicks, jittered_box


def _square(shape=(40, 50), top=10, left=20, side=8) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_jittered_box_stays_within_jitter_and_image():
    mask = _square()
    rng = np.random.default_rng(0)
    tight = np.array([20, 10, 27, 17], dtype=float)
    np.testing.assert_array_equal(jittered_box(mask, rng, 0.0), tight)
    boxes = np.stack([jittered_box(mask, rng, 5.0) for _ in range(200)])
    assert np.all(np.abs(boxes - tight) <= 5.0)
    assert np.all(boxes[:, 0] <= boxes[:, 2]) and np.all(boxes[:, 1] <= boxes[:, 3])
    corner = _square(top=0, left=0)
    clipped = np.stack([jittered_box(corner, rng, 20.0) for _ in range(100)])
    assert clipped.min() >= 0 and clipped[:, 2].max() <= 49 and clipped[:, 3].max() <= 39


def test_background_ring_is_near_the_object():
    mask = _square()
    ring = background_ring(mask, 2)
    assert not (ring & mask).any()
    rows, cols = np.nonzero(ring)
    assert rows.min() == 8 and rows.max() == 19 and cols.min() == 18 and cols.max() == 29
    assert background_ring(mask, 0).sum() == (~mask).sum()


@pytest.mark.parametrize("kind", ["box", "points", "box_points"])
def test_sampler_makes_one_stackable_prompt_per_object(kind):
    masks = np.stack([_square(), _square(top=25, left=5, side=10)])
    sampler = TrainingPromptSampler([kind], box_jitter_px=2, max_positive=3, max_negative=2, negative_margin_px=3)
    prompts = sampler(masks, np.random.default_rng(1))
    assert prompts.kind == kind
    assert (prompts.boxes is not None) == (kind != "points")
    assert (prompts.points is not None) == (kind != "box")
    if prompts.points is not None:
        assert prompts.points.shape[:2] == prompts.labels.shape and prompts.points.shape[0] == 2
        for mask, points, labels in zip(masks, prompts.points.astype(int), prompts.labels):
            inside = mask[points[:, 1], points[:, 0]]
            np.testing.assert_array_equal(inside, labels == 1)  # positives inside, negatives in the ring
            assert labels[0] == 1


def test_sampler_is_seeded_and_mixes_the_kinds():
    masks = _square()[None]
    sampler = TrainingPromptSampler(["box", "points", "box_points"], 10, 3, 2, 5)
    first, second = (sampler(masks, np.random.default_rng(5)) for _ in range(2))
    for field in ("kind", "points", "labels", "boxes"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert {sampler(masks, np.random.default_rng(seed)).kind for seed in range(30)} == {"box", "points", "box_points"}


def test_error_region_clicks_correct_the_previous_answer():
    truth = torch.zeros(3, 4, 4)
    truth[:, 1:3, 1:3] = 1.0
    predicted = truth.bool().clone()
    predicted[0] = False  # prompt 0 missed everything: a positive click on the object
    predicted[1, 0, 0] = True  # prompt 1 has one false alarm at cell (0, 0): a negative click there
    points, labels = error_region_clicks(predicted, truth, np.random.default_rng(0), input_size=16)
    assert points.shape == (3, 1, 2) and labels.shape == (3, 1)
    assert labels[:, 0].tolist() == [1, 0, 1]  # prompt 2 is perfect: a positive click inside
    np.testing.assert_allclose(points[1, 0].numpy(), [2.0, 2.0])  # centre of cell (0, 0), 4 pixels a cell
    for b in (0, 2):
        x, y = (points[b, 0].numpy() // 4).astype(int)
        assert truth[b, y, x] == 1
