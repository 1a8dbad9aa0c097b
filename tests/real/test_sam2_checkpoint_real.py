"""A real SAM 2.1 checkpoint, where the user has one: ``SAMIA_SAM2_CHECKPOINT`` names the file (e.g.
``sam2.1_hiera_tiny.pt``, its name picks the registry model). Boxes on the bundled Colin27 slices
segment their structures: mean Dice >= 0.5 over the 70 AAL objects (the architecture with random
weights scores 0.02; the floor was set without a real checkpoint, which this machine cannot
download, so it is deliberately low). Skipped with the reason otherwise."""

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
    pytest.skip("no real SAM 2.1 checkpoint: set SAMIA_SAM2_CHECKPOINT to sam2.1_hiera_*.pt", allow_module_level=True)
pytest.importorskip("sam2", reason="samia[sam2] is not installed")


def _model_name(path: Path) -> str:
    names = [name for name, entry in MODEL_CATALOGUE.items() if entry.checkpoint_file == path.name]
    if not names:
        pytest.fail(
            f"{path.name}: not a SAM 2.1 release file name ({', '.join(n for n in MODEL_CATALOGUE if n.startswith('sam2'))})"
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
