import numpy as np
import pytest
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import Sam

from samia.auto import EverythingSettings, generate_everything, grid_points, instance_match, iou_matrix, oracle_match
from samia.models import build_model
from samia.predictor import SamiaPredictor


def test_grid_points_are_cell_centres():
    points = grid_points((20, 40), 2)
    np.testing.assert_allclose(points, [[10, 5], [30, 5], [10, 15], [30, 15]])


def test_matches_segment_anythings_generator_on_the_same_model():
    model = build_model("tiny_sam")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 50, (48, 64, 3), dtype=np.uint8)
    image[8:30, 10:40] += 160
    settings = EverythingSettings(points_per_side=8, points_per_batch=16, pred_iou_thresh=0.006,
                                  stability_score_thresh=0.0, box_nms_thresh=0.7)
    predictor = SamiaPredictor(model)
    predictor.set_image(image)
    ours = generate_everything(predictor, settings)
    sam = Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder).eval()  # same SAM normalization
    reference = SamAutomaticMaskGenerator(
        sam, points_per_side=8, points_per_batch=16, pred_iou_thresh=0.006, stability_score_thresh=0.0, box_nms_thresh=0.7
    ).generate(image)
    assert len(reference) > 3 and len(ours) == len(reference)
    theirs = np.stack([r["segmentation"] for r in reference])
    assert (iou_matrix(theirs, ours.masks).max(axis=1) >= 0.99).all()
    np.testing.assert_allclose(sorted(ours.predicted_iou), sorted(r["predicted_iou"] for r in reference), atol=1e-4)


def test_thresholds_drop_masks():
    model = build_model("tiny_sam")
    predictor = SamiaPredictor(model)
    predictor.set_image(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    assert len(generate_everything(predictor, EverythingSettings(points_per_side=4, pred_iou_thresh=10.0))) == 0


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def test_oracle_and_instance_matching():
    a, b = _disk((40, 40), (10, 10), 6), _disk((40, 40), (28, 28), 6)
    extra = _disk((40, 40), (10, 30), 4)
    generated = np.stack([a, a | b | extra, extra])
    objects = np.stack([a, b])
    ious = iou_matrix(generated, objects)
    assert ious[0, 0] == pytest.approx(1.0) and ious[2].max() == 0
    # the oracle lets both objects take masks; b's best is the union mask
    np.testing.assert_array_equal(oracle_match(ious), [0, 1])
    match = instance_match(ious, 0.5)
    np.testing.assert_array_equal(match.object_to_mask, [0, -1])  # b overlaps only the union mask, at IoU < 0.5
    assert (match.true_positives, match.false_positives, match.false_negatives) == (1, 2, 1)
    assert oracle_match(np.zeros((0, 2))).tolist() == [-1, -1]
    nothing = iou_matrix(np.zeros((0, 40, 40), bool), objects)
    assert nothing.shape == (0, 2) and instance_match(nothing).false_negatives == 2
