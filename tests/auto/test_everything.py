import numpy as np
import pytest
import torch
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
    settings = EverythingSettings(
        points_per_side=8, points_per_batch=16, pred_iou_thresh=0.006, stability_score_thresh=0.0, box_nms_thresh=0.7
    )
    predictor = SamiaPredictor(model)
    predictor.set_image(image)
    ours = generate_everything(predictor, settings)
    sam = Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder).eval()  # same SAM normalization
    reference = SamAutomaticMaskGenerator(
        sam,
        points_per_side=8,
        points_per_batch=16,
        pred_iou_thresh=0.006,
        stability_score_thresh=0.0,
        box_nms_thresh=0.7,
    ).generate(image)
    assert len(reference) > 3 and len(ours) == len(reference)
    theirs = np.stack([r["segmentation"] for r in reference])
    assert (iou_matrix(theirs, ours.masks).max(axis=1) >= 0.99).all()
    np.testing.assert_allclose(sorted(ours.predicted_iou), sorted(r["predicted_iou"] for r in reference), atol=1e-4)


def test_stability_filter_matches_segment_anythings_generator():
    """A stability threshold that drops about half of the masks, with the default offset 1.0: the
    same masks survive as in segment-anything's generator. The tiny model's mask head is scaled up
    so that its logits exceed the offset (random weights give logits of about +-0.1)."""
    model = build_model("tiny_sam")
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(300)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 50, (48, 64, 3), dtype=np.uint8)
    image[8:30, 10:40] += 160
    common = dict(points_per_side=4, points_per_batch=16, pred_iou_thresh=0.0, box_nms_thresh=1.0)
    predictor = SamiaPredictor(model)
    predictor.set_image(image)
    unfiltered = generate_everything(predictor, EverythingSettings(stability_score_thresh=0.0, **common))
    ours = generate_everything(predictor, EverythingSettings(stability_score_thresh=0.55, **common))
    assert EverythingSettings().stability_score_offset == 1.0
    sam = Sam(model.image_encoder, model.prompt_encoder, model.mask_decoder).eval()
    reference = SamAutomaticMaskGenerator(sam, stability_score_thresh=0.55, **common).generate(image)
    assert 5 < len(reference) < len(unfiltered) - 5  # the filter is exercised
    assert len(ours) == len(reference)
    theirs = np.stack([r["segmentation"] for r in reference])
    assert (iou_matrix(theirs, ours.masks).max(axis=1) >= 0.99).all()
    np.testing.assert_allclose(sorted(ours.stability_score), sorted(r["stability_score"] for r in reference), atol=1e-4)


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
