"""The viewer conversions with the real LiteMedSAM on the bundled Colin27 volume: a lasso (its
region as SAM's mask input plus its box) does as well as the box alone, within 0.02 Dice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from samia.data.samples import sample_dataset_path
from samia.io import read_image, read_label
from samia.metrics import dice
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.serve.viewer import ViewerSession

pytestmark = pytest.mark.real_weights

CEREBELLUM_L = 9


def test_a_lasso_reaches_the_box_prompts_dice_on_the_same_object() -> None:
    folder = sample_dataset_path("colin27_aal_3d")
    image = read_image(folder / "imagesTr" / "colin27.nii.gz")
    truth = read_label(folder / "labelsTr" / "colin27.nii.gz").array == CEREBELLUM_L
    key = int(np.argmax(truth.sum(axis=(1, 2))))
    rows, cols = np.flatnonzero(truth[key].any(axis=1)), np.flatnonzero(truth[key].any(axis=0))
    model = build_model("litemedsam", backend="auto")

    boxed = ViewerSession(SamiaPredictor(model), image.array, image.spacing)
    boxed.add_box([[key, key + 1], [rows[0], rows[-1] + 1], [cols[0], cols[-1] + 1]], positive=True)

    drawn = np.zeros(truth.shape, dtype=np.uint8)  # a loose lasso: the outline 3 px outside, filled
    drawn[key] = ndimage.binary_fill_holes(ndimage.binary_dilation(truth[key], iterations=3))
    lassoed = ViewerSession(SamiaPredictor(model), image.array, image.spacing)
    lassoed.add_lasso(drawn, positive=True)

    box_dice, lasso_dice = dice(boxed.mask, truth), dice(lassoed.mask, truth)
    assert box_dice > 0.3  # LiteMedSAM carries the cerebellum over 13 of its 23 slices
    assert lasso_dice >= box_dice - 0.02, (lasso_dice, box_dice)
