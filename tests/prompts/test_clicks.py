import numpy as np

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts.clicks import Click, next_click, simulate_clicks


def _square(shape=(40, 40), top=10, left=10, size=20) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_click_goes_to_the_middle_of_the_missed_part():
    truth = _square()
    prediction = truth.copy()
    prediction[10:30, 20:30] = False  # the right half (rows 10..29, cols 20..29) is missed
    click = next_click(prediction, truth)
    assert click.label == 1 and click.reason == "false_negative"
    x, y = click.point
    assert 24 <= x <= 25 and 14 <= y <= 25 and truth[int(y), int(x)] and not prediction[int(y), int(x)]


def test_a_larger_false_positive_gets_a_negative_click():
    truth = _square(size=10)
    prediction = truth.copy()
    prediction[0, 0:2] = False  # nothing missed inside truth? (truth starts at 10) -> no effect
    prediction[25:35, 25:38] = True  # a big extra blob
    prediction[12, 12] = False  # one missed pixel
    click = next_click(prediction, truth)
    assert click.label == 0 and click.reason == "false_positive"
    x, y = click.point
    assert 25 <= y <= 34 and 25 <= x <= 37


def test_no_error_no_click():
    truth = _square()
    assert next_click(truth.copy(), truth) is None


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, (48, 48, 3), dtype=np.uint8)
    image[10:30, 10:30] += 150
    return image


def test_trajectories_add_one_click_per_step_and_feed_back_logits():
    predictor = SamiaPredictor(build_model("tiny_sam"))
    predictor.set_image(_image())
    truths = [_square((48, 48)), _square((48, 48), top=32, left=32, size=10)]
    trajectories = simulate_clicks(predictor, truths, max_clicks=4, selection="single")
    assert [len(t) for t in trajectories] == [4, 4]
    for trajectory in trajectories:
        assert [s.n_clicks for s in trajectory] == [1, 2, 3, 4]
        first = trajectory[0]
        assert first.prompt.mask_input is None and first.prompt.meta["click_reasons"][0].startswith("point1")
        for step in trajectory[1:]:
            if not step.converged:
                assert step.prompt.mask_input is not None and len(step.prompt.points) == step.n_clicks
    assert predictor.encoder_calls == 1


def test_replayed_clicks_are_used_and_trajectories_end_when_they_run_out():
    predictor = SamiaPredictor(build_model("tiny_sam"))
    predictor.set_image(_image())
    recorded = [[Click(np.array([20.0, 20.0]), 1, "replayed"), Click(np.array([5.0, 5.0]), 0, "replayed")]]
    (trajectory,) = simulate_clicks(
        predictor, [_square((48, 48))], max_clicks=3, selection="predicted_iou", replayed=recorded
    )
    np.testing.assert_array_equal(trajectory[1].prompt.points, [[20, 20], [5, 5]])
    assert trajectory[1].prompt.labels.tolist() == [1, 0]
    assert trajectory[2].converged and trajectory[2].prompt is trajectory[1].prompt
    assert trajectory[1].prediction.masks.shape[0] == 3  # multimask candidates for predicted_iou


def test_the_chosen_candidates_logits_are_fed_back_not_candidate_zeros():
    """Under the oracle rule the chosen candidate varies; its low-res logits are the next mask_input."""
    predictor = SamiaPredictor(build_model("tiny_sam"))
    predictor.set_image(_image())
    truths = [
        _square((48, 48), top=top, left=left, size=size)
        for top, left, size in ((10, 10, 20), (32, 32, 10), (2, 30, 14), (30, 2, 16))
    ]
    trajectories = simulate_clicks(predictor, truths, max_clicks=4, selection="oracle")
    checked_nonzero = 0
    for trajectory in trajectories:
        for previous, step in zip(trajectory, trajectory[1:]):
            if step.converged:
                continue
            chosen = previous.prediction.low_res_logits[previous.candidate]
            np.testing.assert_array_equal(step.prompt.mask_input, chosen)
            if previous.candidate != 0:
                checked_nonzero += 1
                assert not np.array_equal(step.prompt.mask_input, previous.prediction.low_res_logits[0])
    assert checked_nonzero >= 1  # the rule was exercised where candidate 0 would be wrong
