"""The real LiteMedSAM weights on ONNX Runtime and OpenVINO (fp32) against PyTorch on the bundled
Colin27 slices: the same embedding and logits to 1e-3, every object's box mask at IoU >= 0.999."""

from __future__ import annotations

import numpy as np
import pytest
from reference_pipelines import mask_iou, sample_images_and_boxes

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt

pytestmark = pytest.mark.real_weights


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_litemedsam_fp32_backends_match_torch(backend, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAMIA_CACHE", str(tmp_path))
    reference = SamiaPredictor(build_model("litemedsam"))
    other = SamiaPredictor(build_model("litemedsam", backend=backend))
    compared = 0
    for _, image, boxes, _ in sample_images_and_boxes():
        reference.set_image(image)
        other.set_image(image)
        assert float(np.abs(reference.image_embedding - other.image_embedding).max()) <= 1e-3
        prompts = [Prompt(box=np.asarray(box, dtype=np.float64)) for box in boxes]
        for ours, theirs in zip(other.predict_batch(prompts, False), reference.predict_batch(prompts, False)):
            assert np.abs(ours.low_res_logits - theirs.low_res_logits).max() <= 1e-3
            if theirs.masks.any():
                assert mask_iou(ours.masks[0], theirs.masks[0]) >= 0.999
                compared += 1
    assert compared >= 60  # the 66 sample objects but the ones both answer empty
