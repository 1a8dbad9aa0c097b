"""The 3D-box rule of the CVPR 2024 "MedSAM on a Laptop" baseline, pinned piece by piece and against
an independent transcription of ``MedSAM_infer_npz_3D`` (tests/reference_pipelines.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reference_pipelines import _litemedsam_bbox256, litemedsam_3d_reference

from samia.data.phantoms import bent_tube_mask, ellipsoid_mask
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset, input_geometry
from samia.types import Prompt, Volume
from samia.volume import Box3D, VolumePrompt, VolumeSession, box3d_of_mask, segment_volume
from samia.volume.propagation import BOX3D_SETTINGS, SliceAnswer, grown_box, next_prompt


def _phantom(depth: int = 9, shape: tuple[int, int] = (40, 52)) -> tuple[Volume, np.ndarray]:
    """A uint8 volume (the challenge's ``imgs`` kind) with a bent tube, and its mask."""
    mask = bent_tube_mask((depth, *shape), start=(18, 14), bend=16, radius=6, z_range=(1, depth - 2))
    rng = np.random.default_rng(3)
    array = np.where(mask, 190, 60) + rng.integers(0, 30, mask.shape)
    return Volume(array.astype(np.uint8), spacing=(2.5, 0.9, 0.9), path="tube.npz"), mask


@pytest.mark.parametrize("z0,z1,expected", [(0, 9, 4), (3, 8, 5), (2, 2, 2), (5, 6, 5), (1, 10, 5)])
def test_the_key_slice_is_int_of_half_the_range_plus_z0(z0, z1, expected) -> None:
    assert Box3D(0, 0, z0, 3, 3, z1).middle(0) == expected == int((z1 - z0) / 2 + z0)


def test_samia_matches_the_baseline_loop_slice_by_slice() -> None:
    volume, mask = _phantom()
    box = box3d_of_mask(mask)
    model = build_model("tiny_litemedsam")
    expected, used = litemedsam_3d_reference(
        model.image_encoder, model.prompt_encoder, model.mask_decoder, volume.array, box.to_list()
    )
    with VolumeSession(SamiaPredictor(model), volume, get_preset("passthrough")) as session:
        result = segment_volume(session, [VolumePrompt(box3d=box)])
    answer = result.objects[0]
    geometry = input_geometry("litemedsam", volume.shape[1:], 256)
    for step in answer.steps:
        framed = geometry.boxes_to_input(np.asarray(step.prompt["box"]))
        assert framed.tolist() == used[step.slice], f"slice {step.slice}"
    assert sorted(used) == sorted(step.slice for step in answer.steps) == list(range(box.z0, box.z1 + 1))
    assert np.array_equal(answer.mask, expected.astype(bool))


def test_both_ends_of_the_range_are_segmented_and_nothing_beyond() -> None:
    volume, mask = _phantom()
    box = box3d_of_mask(mask)
    with VolumeSession(SamiaPredictor(build_model("tiny_sam")), volume, get_preset("passthrough")) as session:
        answer = segment_volume(session, [VolumePrompt(box3d=box)]).objects[0]
    visited = sorted(step.slice for step in answer.steps)
    assert visited == list(range(box.z0, box.z1 + 1))  # z1 included, z0 included
    assert [s.source for s in answer.steps if s.slice == box.middle(0)] == ["key"]
    assert all(s.source == "up" for s in answer.steps if s.slice > box.middle(0))
    assert all(s.source == "down" for s in answer.steps if s.slice < box.middle(0))
    outside = np.ones(volume.shape[0], dtype=bool)
    outside[box.z0 : box.z1 + 1] = False
    assert not answer.mask[outside].any()


def test_the_key_slice_gets_the_projection_of_the_box() -> None:
    volume, mask = _phantom()
    box = box3d_of_mask(mask)
    with VolumeSession(SamiaPredictor(build_model("tiny_sam")), volume, get_preset("passthrough")) as session:
        answer = segment_volume(session, [VolumePrompt(box3d=box)]).objects[0]
    key = next(s for s in answer.steps if s.source == "key")
    assert key.prompt["box"] == [box.x0, box.y0, box.x1, box.y1]


def test_the_next_box_is_the_previous_masks_box_grown_by_3px_in_the_256_frame() -> None:
    geometry = input_geometry("litemedsam", (100, 80), 256)
    previous = np.zeros((100, 80), dtype=bool)
    previous[30:52, 20:41] = True
    prompt = next_prompt(SliceAnswer(previous, np.zeros((256, 256), np.float32), 0.9), None, geometry, BOX3D_SETTINGS)
    import cv2

    resized = cv2.resize(previous.astype(np.uint16), (205, 256), interpolation=cv2.INTER_AREA)
    framed = np.pad(resized, ((0, 0), (0, 51)))
    assert geometry.boxes_to_input(prompt.box).tolist() == _litemedsam_bbox256(framed).tolist()


def test_an_empty_previous_mask_falls_back_to_the_projected_box() -> None:
    geometry = input_geometry("litemedsam", (100, 80), 256)
    fallback = Prompt(box=np.array([5.0, 6.0, 40.0, 50.0]))
    empty = SliceAnswer(np.zeros((100, 80), dtype=bool), np.zeros((256, 256), np.float32), 0.1)
    assert next_prompt(empty, fallback, geometry, BOX3D_SETTINGS) is fallback
    large = input_geometry("litemedsam", (600, 500), 256)
    speck = np.zeros((600, 500), dtype=bool)
    speck[300, 240] = True  # one pixel of 600: a fifth of a frame pixel, gone in the 256 frame
    small = SliceAnswer(speck, np.zeros((256, 256), np.float32), 0.1)
    assert grown_box(speck, large, 3.0) is None
    assert next_prompt(small, fallback, large, BOX3D_SETTINGS) is fallback


def test_an_ellipsoid_box_and_its_projection_along_each_axis() -> None:
    mask = ellipsoid_mask((20, 30, 40), (9, 14, 21), (5, 8, 12))
    box = box3d_of_mask(mask)
    assert box.to_list() == [9, 6, 4, 33, 22, 14]
    assert box.along(0)[:2] == (4, 14) and box.along(0)[2].tolist() == [9, 6, 33, 22]
    assert box.along(1)[:2] == (6, 22) and box.along(1)[2].tolist() == [9, 4, 33, 14]
    assert box.along(2)[:2] == (9, 33) and box.along(2)[2].tolist() == [6, 4, 22, 14]
