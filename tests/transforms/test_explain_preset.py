"""Commands say which intensity window the model saw, why, and how to pick another."""

from __future__ import annotations

import numpy as np

from samia.transforms import explain_preset, get_preset, preset_for
from samia.types import Image2D, Volume


def test_a_ct_says_its_window_in_hu_and_the_bone_and_lung_presets() -> None:
    ct = Volume(np.full((4, 8, 8), -500.0, np.float32), spacing=(2.0, 0.7, 0.7), modality="CT")
    text = explain_preset(preset_for(ct), ct)
    assert text == "ct_soft_tissue (the CT default, L40/W400 HU; bone or lung: --preset ct_bone / ct_lung)"
    assert explain_preset(get_preset("ct_lung"), ct) == "ct_lung (asked for with --preset)"


def test_gray_images_name_the_percentile_window_and_an_untagged_file_is_told_about_modality() -> None:
    mr = Image2D(np.arange(64, dtype=np.float32).reshape(8, 8), modality="MR")
    assert explain_preset(preset_for(mr), mr) == "percentile (the MR default: 0.5-99.5th percentile window)"
    png = Image2D(np.arange(64, dtype=np.float32).reshape(8, 8), modality="other")
    assert "needs --modality CT" in explain_preset(preset_for(png), png)


def test_colour_and_challenge_files_are_passed_through_and_say_why() -> None:
    rgb = Image2D(np.zeros((8, 8, 3), np.uint8), modality="other")
    assert explain_preset(preset_for(rgb), rgb) == "passthrough (colour kept as it is)"
    npz = Volume(np.zeros((2, 8, 8), np.uint8), spacing=(1.0, 1.0, 1.0), modality="CT", path="case.npz")
    assert explain_preset(preset_for(npz), npz) == "passthrough (the challenge file holds 0..255 already)"
