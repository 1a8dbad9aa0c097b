"""A propagation that shrinks while the model stays confident is detected and explained."""

from __future__ import annotations

import numpy as np

from samia.volume import ObjectVolume, SliceStep
from samia.volume.shrinkage import find_shrinkage


def _object(areas_up: list[int], ious_up: list[float], areas_down: list[int] = ()) -> ObjectVolume:
    steps = [SliceStep(20, "key", {}, 0.9, 1000)]
    steps += [SliceStep(21 + i, "up", {}, iou, area) for i, (area, iou) in enumerate(zip(areas_up, ious_up))]
    steps += [SliceStep(19 - i, "down", {}, 0.9, area) for i, area in enumerate(areas_down)]
    return ObjectVolume(np.zeros((1, 1, 1), bool), [20], steps)


def test_a_confident_halving_over_five_slices_is_found_with_advice() -> None:
    found = find_shrinkage(_object([900, 800, 650, 450, 300, 280], [0.8] * 6, [980, 960]))
    assert found is not None and found.direction == "up"
    assert (found.first_slice, found.first_area) == (20, 1000) and found.last_area < 500
    advice = found.advice()
    assert "--multimask" in advice and "--projection" in advice and f"--slice {found.last_slice}" in advice


def test_shrinking_that_the_model_doubts_or_that_is_short_or_mild_is_not_flagged() -> None:
    assert find_shrinkage(_object([900, 800, 650, 450, 300], [0.8, 0.8, 0.6, 0.8, 0.8])) is None  # IoU dips
    assert find_shrinkage(_object([700, 450, 300], [0.9] * 3)) is None  # 4 slices with the key
    assert find_shrinkage(_object([950, 900, 850, 800, 700, 600], [0.9] * 6)) is None  # kept > half


def test_the_downward_direction_counts_from_the_key_slice() -> None:
    found = find_shrinkage(_object([990], [0.9], [900, 700, 500, 400, 200]))
    assert found is not None and found.direction == "down" and found.first_slice == 20 and found.last_slice == 15
