"""The real LiteMedSAM weights through the volume engine on the bundled Colin27 volume (T1 MRI, AAL).

Both thalami span slices 33..43, so the two strategies of the two objects share 11 encoder calls.
Floors (docs/guides/segment-volume.md): box3d >= 0.25 and slice_boxes >= 0.45 mean 3D Dice over the two
thalami, predicted-IoU selection (measured: 0.38 and 0.59); slice_boxes, given every slice's tight
box, must beat box3d, which only gets the middle slice's projection of the 3D box.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samia.data import Case, load_case
from samia.data.samples import sample_dataset_path
from samia.metrics import segmentation_metrics
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset
from samia.volume import BOX3D_SETTINGS, VolumePrompt, VolumeSession, box3d_of_mask, segment_volume, volume_prompt

pytestmark = pytest.mark.real_weights

THALAMI = (5, 6)


def test_litemedsam_segments_both_thalami_through_the_volume() -> None:
    root = sample_dataset_path("colin27_aal_3d")
    case = Case("colin27", root / "imagesTr" / "colin27.nii.gz", root / "labelsTr" / "colin27.nii.gz", "MR", "colin27")
    image, label = load_case(case)
    masks = [label.array == value for value in THALAMI]
    settings = replace(BOX3D_SETTINGS, output="predicted_iou")
    predictor = SamiaPredictor(build_model("litemedsam"))
    with VolumeSession(predictor, image, get_preset("percentile"), keep_all=True) as session:
        box3d = segment_volume(session, [VolumePrompt(box3d=box3d_of_mask(m)) for m in masks], settings)
        oracle = segment_volume(session, [volume_prompt("slice_boxes", m, 0) for m in masks], settings)
    assert box3d.slices_encoded == 11 and oracle.slices_encoded == 0
    scores = {
        name: [segmentation_metrics(o.mask, m, image.spacing)["dice"] for o, m in zip(result.objects, masks)]
        for name, result in (("box3d", box3d), ("slice_boxes", oracle))
    }
    assert np.mean(scores["box3d"]) >= 0.25, scores
    assert np.mean(scores["slice_boxes"]) >= 0.45, scores
    assert np.mean(scores["slice_boxes"]) > np.mean(scores["box3d"])


def test_the_fast_speed_keeps_accurates_masks_with_fewer_encoder_calls() -> None:
    """On a phantom (the benchmark's volumes are larger; benchmarks/volume_speed.py)."""
    from samia.data.phantoms import volume_case

    volume, labels = volume_case(np.random.default_rng(4), depth=30, side=96, n_objects=2)
    prompts = [VolumePrompt(box3d=box3d_of_mask(labels == value)) for value in (1, 2)]
    predictor = SamiaPredictor(build_model("litemedsam"))
    results = {}
    for speed in ("accurate", "fast"):
        with VolumeSession(predictor, volume, get_preset("percentile")) as session:
            results[speed] = segment_volume(session, prompts, speed=speed)
    accurate, fast = results["accurate"], results["fast"]
    assert fast.slices_encoded < accurate.slices_encoded
    agreement = [
        segmentation_metrics(f.mask, a.mask, volume.spacing)["dice"] for f, a in zip(fast.objects, accurate.objects)
    ]
    assert min(agreement) >= 0.95, agreement
