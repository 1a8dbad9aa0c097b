"""A real SAM 2.1 or MedSAM2 checkpoint, where the user has one: ``SAMIA_SAM2_CHECKPOINT`` names the
file (e.g. ``sam2.1_hiera_tiny.pt`` or ``MedSAM2_latest.pt``, its name picks the registry model).
Boxes on the bundled Colin27 slices segment their structures: mean Dice >= 0.5 over the 70 AAL
objects (the architecture with random weights scores 0.02); 3D boxes of the bundled Colin27
volume's three largest structures, tracked with SAM 2's memory, reach a mean volume Dice >= 0.5.
The floors were set without a real checkpoint, which this machine cannot download, so they are
deliberately low. Skipped with the reason otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from reference_pipelines import sample_images_and_boxes

from samia.metrics import dice
from samia.models import build_model
from samia.models.catalogue import MODEL_CATALOGUE
from samia.predictor import SamiaPredictor
from samia.types import Prompt

pytestmark = pytest.mark.real_weights
CHECKPOINT = os.environ.get("SAMIA_SAM2_CHECKPOINT")
if not CHECKPOINT:
    pytest.skip(
        "no real SAM 2 checkpoint: set SAMIA_SAM2_CHECKPOINT to sam2.1_hiera_*.pt or MedSAM2_latest.pt",
        allow_module_level=True,
    )
pytest.importorskip("sam2", reason="samia[sam2] is not installed")


def _model_name(path: Path) -> str:
    names = [name for name, entry in MODEL_CATALOGUE.items() if entry.checkpoint_file == path.name]
    if not names:
        pytest.fail(
            f"{path.name}: not a SAM 2.1 or MedSAM2 release file name "
            f"({', '.join(str(e.checkpoint_file) for n, e in MODEL_CATALOGUE.items() if 'sam2' in n and e.checkpoint_file)})"
        )
    return names[0]


def test_boxes_on_the_bundled_slices_reach_a_dice_floor() -> None:
    path = Path(CHECKPOINT)
    model = build_model(_model_name(path), path)
    assert model.weights_sha256 != "random"
    predictor = SamiaPredictor(model)
    scores = []
    for _, rgb, boxes, truths in sample_images_and_boxes():
        predictor.set_image(rgb)
        for box, truth in zip(boxes, truths):
            answer = predictor.predict(Prompt(box=np.asarray(box, dtype=np.float64)), multimask_output=False)
            scores.append(dice(answer.masks[0], truth))
    assert np.mean(scores) >= 0.5, f"mean box Dice {np.mean(scores):.3f} over {len(scores)} objects"


def test_memory_tracking_of_3d_boxes_on_the_bundled_volume_reaches_a_dice_floor() -> None:
    from samia.data import sample_dataset_path
    from samia.io.volume import read_volume
    from samia.transforms import preset_for
    from samia.volume import VolumePrompt, VolumeSession, box3d_of_mask
    from samia.volume.memory import segment_volume_for_model

    path = Path(CHECKPOINT)
    folder = sample_dataset_path("colin27_aal_3d")
    volume = read_volume(folder / "imagesTr" / "colin27.nii.gz")
    labels = read_volume(folder / "labelsTr" / "colin27.nii.gz").array.astype(np.int32)
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    truths = [labels == value for value in values[np.argsort(counts)[-3:]]]
    with VolumeSession(SamiaPredictor(build_model(_model_name(path), path)), volume, preset_for(volume)) as session:
        result = segment_volume_for_model(session, [VolumePrompt(box3d=box3d_of_mask(t)) for t in truths])
    scores = [dice(obj.mask, truth) for obj, truth in zip(result.objects, truths)]
    assert np.mean(scores) >= 0.5, f"mean volume Dice {np.mean(scores):.3f}: {np.round(scores, 3)}"
