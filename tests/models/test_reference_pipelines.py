"""Each model's reference input pipeline, against an independent re-implementation of its script.

Tiny random-weight models on the bundled real samples (217 x 181, so the aspect ratio matters):
samia's predictor with the model's default pipeline must give the masks the released script gives
(``reference_pipelines``, written from the scripts), IoU >= 0.99 per object.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_pipelines import litemedsam_reference, mask_iou, medsam_reference, sample_images_and_boxes

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt

SAMPLES = list(sample_images_and_boxes())[:4]


def _samia_masks(model, image, boxes):
    predictor = SamiaPredictor(model)
    predictor.set_image(image)
    return [predictor.predict(Prompt(box=np.asarray(b, float)), multimask_output=False).masks[0] for b in boxes]


@pytest.mark.parametrize(
    ("name", "reference", "pipeline"),
    [
        ("tiny_litemedsam", litemedsam_reference, "litemedsam"),
        ("tiny_medsam", medsam_reference, "medsam"),
    ],
)
def test_default_pipeline_reproduces_the_reference_script(name, reference, pipeline) -> None:
    model = build_model(name)
    assert model.input_pipeline == pipeline
    compared = 0
    for _, image, boxes, _ in SAMPLES:
        expected = reference(
            model.image_encoder, model.prompt_encoder, model.mask_decoder, image, boxes, side=model.input_size
        )
        for ours, theirs in zip(_samia_masks(model, image, boxes), expected):
            if theirs.any():
                compared += 1
            assert mask_iou(ours, theirs.astype(bool)) >= 0.99
    assert compared >= 10  # the random models do answer (the comparison is not of empty masks)


def test_sams_letterbox_is_not_the_litemedsam_reference() -> None:
    """The pipelines differ where it shows: the same model through SAM's letterbox changes masks."""
    model = build_model("tiny_litemedsam")
    letterboxed = build_model("tiny_litemedsam", input_pipeline="sam")
    worst = 1.0
    for _, image, boxes, _ in SAMPLES:
        expected = litemedsam_reference(model.image_encoder, model.prompt_encoder, model.mask_decoder, image, boxes)
        for ours, theirs in zip(_samia_masks(letterboxed, image, boxes), expected):
            worst = min(worst, mask_iou(ours, theirs.astype(bool)))
    assert worst < 0.99
