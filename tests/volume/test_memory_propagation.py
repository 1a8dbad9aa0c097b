"""samia's SAM 2 memory propagation equals Meta's ``sam2`` ``SAM2VideoPredictor`` on the same seeded
random weights of the real Hiera-T architecture (at 256 px), fed the same preprocessed slices
through its inference state (no JPEG round trip), hole filling off: for a 3D box (CVPR rule), two
key slices with clicks, and a given key-slice mask, both passes, their union identical wherever the
reference's logits are decided. Also: the stop rules end a pass, bounds hold, every slice is encoded
once for all objects and passes, and models of another family are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sam2.sam2_video_predictor", reason="samia[sam2] is not installed")

from PIL import Image
from sam2.build_sam import build_sam2_video_predictor
from sam2.utils.transforms import SAM2Transforms

from samia.data.phantoms import ellipsoid_mask
from samia.errors import ConfigurationError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset
from samia.types import Prompt, Volume
from samia.volume import KeySlice, VolumePrompt, VolumeSession, box3d_of_mask
from samia.volume.memory import MemorySettings, segment_volume_with_memory

SHAPE = (12, 48, 56)
NO_STOP = MemorySettings(stop_on_object_score=False)
DECIDED = 1e-3


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam2")


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, np.ndarray]:
    mask = ellipsoid_mask(SHAPE, (5.5, 24, 28), (5, 12, 14))
    rng = np.random.default_rng(0)
    array = np.where(mask, 180.0, 40.0) + rng.normal(0, 8, SHAPE)
    return Volume(array.astype(np.float32), spacing=(3.0, 1.0, 1.0), path="phantom.nii.gz"), mask


@pytest.fixture(scope="module")
def reference(model, phantom, tmp_path_factory):
    """``sam2``'s own video predictor with samia's weights, and its state over samia's slices."""
    predictor = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu", hydra_overrides_extra=["++model.image_size=256"]
    )
    predictor.load_state_dict(model.tracker.state_dict())
    predictor.fill_hole_area = 0  # hole filling off (a CPU install has no _C extension)
    volume, _ = phantom
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile")) as session:
        slices = [session.rgb(index) for index in range(session.depth)]
    folder: Path = tmp_path_factory.mktemp("frames")
    for index, rgb in enumerate(slices):  # init_state reads a JPEG folder; its frames are replaced
        Image.fromarray(rgb).save(folder / f"{index:05d}.jpg")
    state = predictor.init_state(video_path=str(folder))
    transforms = SAM2Transforms(resolution=256, mask_threshold=0.0)
    state["images"] = torch.stack([transforms(rgb) for rgb in slices])
    state["cached_features"] = {}
    return predictor, state


def _reference_passes(reference, prompts: dict[int, dict], low: int, high: int) -> list[dict[int, np.ndarray]]:
    """Logits per slice of the forward pass (from the lowest prompted slice) and of the reverse
    pass (state reset, prompts again, from the highest), as ``medsam2_infer_3D_CT.py`` runs them."""
    predictor, state = reference
    passes = []
    for reverse in (False, True):
        predictor.reset_state(state)
        for index, prompt in prompts.items():
            if "mask" in prompt:
                predictor.add_new_mask(state, index, 1, torch.from_numpy(prompt["mask"]))
            else:
                predictor.add_new_points_or_box(state, index, 1, **prompt)
        start = max(prompts) if reverse else min(prompts)
        count = start - low if reverse else high - start
        logits = {
            index: masks[0, 0].numpy().copy()
            for index, _, masks in predictor.propagate_in_video(state, start, count, reverse=reverse)
        }
        passes.append(logits)
    predictor.reset_state(state)
    return passes


def _assert_union_equal(result, passes: list[dict[int, np.ndarray]]) -> None:
    """Masks identical and logits within 1e-4 wherever every pass's reference logit is decided."""
    mine = result.objects[0]
    expected = np.zeros_like(mine.mask)
    logits = np.full(mine.mask.shape, -np.inf, dtype=np.float32)
    decided = np.ones_like(mine.mask)
    for reference in passes:
        for index, plane in reference.items():
            expected[index] |= plane > 0
            logits[index] = np.maximum(logits[index], plane)
            decided[index] &= np.abs(plane) > DECIDED
    assert np.array_equal(mine.mask[decided], expected[decided])
    reached = decided & np.isfinite(logits)
    assert np.abs(mine.logits[reached] - logits[reached]).max() < 1e-4
    assert np.array_equal(np.isfinite(mine.logits), np.isfinite(logits))
    assert decided.mean() > 0.95
    assert 0 < expected.sum() < expected.size  # a real comparison: neither empty nor everything


def test_3d_box_equals_sam2_video_predictor(model, phantom, reference) -> None:
    volume, mask = phantom
    box = box3d_of_mask(mask)
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile")) as session:
        result = segment_volume_with_memory(session, [VolumePrompt(box3d=box)], NO_STOP, keep_logits=True)
    middle = box.middle(0)
    box2d = torch.tensor([box.x0, box.y0, box.x1, box.y1], dtype=torch.float32)
    passes = _reference_passes(reference, {middle: {"box": box2d}}, box.z0, box.z1)
    _assert_union_equal(result, passes)
    assert not result.objects[0].mask[: box.z0].any() and not result.objects[0].mask[box.z1 + 1 :].any()
    assert result.objects[0].key_slices == [middle]
    assert result.finished


def test_two_key_slices_with_clicks_and_a_given_mask_equal_sam2(model, phantom, reference) -> None:
    volume, mask = phantom
    clicks = np.array([[28.0, 24.0], [5.0, 5.0]])
    labels = np.array([1, 0])
    given = mask[8]
    prompt = VolumePrompt(
        key_slices=(
            KeySlice(3, Prompt(points=clicks, labels=labels, box=np.array([16.0, 14, 40, 34]))),
            KeySlice(8, mask=given),
        )
    )
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile")) as session:
        result = segment_volume_with_memory(session, [prompt], NO_STOP, keep_logits=True)
    first = {
        "points": torch.tensor(clicks, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int32),
        "box": torch.tensor([16.0, 14, 40, 34]),
    }
    passes = _reference_passes(reference, {3: first, 8: {"mask": given}}, 0, SHAPE[0] - 1)
    _assert_union_equal(result, passes)
    sources = {(step.slice, step.source) for step in result.objects[0].steps}
    assert (3, "key") in sources and (8, "mask") in sources
    assert {s for s, source in sources if source == "up"} == {4, 5, 6, 7, 9, 10, 11}  # forward from 3
    assert {s for s, source in sources if source == "down"} == {7, 6, 5, 4, 2, 1, 0}  # reverse from 8


def test_every_slice_is_encoded_once_for_all_objects_and_passes(model, phantom) -> None:
    volume, mask = phantom
    prompts = [
        VolumePrompt(box3d=box3d_of_mask(mask)),
        VolumePrompt(key_slices=(KeySlice(5, Prompt(box=np.array([20.0, 18, 36, 30]))),)),
    ]
    seen: list[tuple[int, int]] = []
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile")) as session:
        result = segment_volume_with_memory(
            session, prompts, NO_STOP, progress=lambda done, planned: seen.append((done, planned))
        )
    assert result.slices_encoded == SHAPE[0]
    box = box3d_of_mask(mask)
    assert seen[-1] == ((box.z1 - box.z0 + 1) + SHAPE[0], (box.z1 - box.z0 + 1) + SHAPE[0])


def test_stop_rules_end_a_pass(model, phantom) -> None:
    volume, _ = phantom
    prompt = VolumePrompt(key_slices=(KeySlice(5, Prompt(box=np.array([20.0, 18, 36, 30]))),))
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile"), keep_all=True) as session:
        free = segment_volume_with_memory(session, [prompt], NO_STOP).objects[0]
        strict = segment_volume_with_memory(session, [prompt], MemorySettings(min_iou_with_previous=1.0)).objects[0]
    assert free.mask.sum(axis=(1, 2)).astype(bool).sum() > 2  # random weights still track over slices
    stops = [step for step in strict.steps if step.stop is not None]
    assert [step.slice for step in stops] == [6, 4]  # IoU 1.0 is never met: each pass stops at once
    assert all(step.stop.startswith("iou") and step.area == 0 for step in stops)
    assert strict.mask.sum(axis=(1, 2)).astype(bool).sum() == 1


def test_a_pass_stops_where_the_object_score_says_absent(phantom) -> None:
    volume, _ = phantom
    model = build_model("tiny_sam2")
    prompt = VolumePrompt(key_slices=(KeySlice(5, Prompt(box=np.array([20.0, 18, 36, 30]))),))
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile"), keep_all=True) as session:
        present = segment_volume_with_memory(session, [prompt]).objects[0]
        with torch.no_grad():  # the object-score head now judges every slice empty
            model.mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(-50.0)
        absent = segment_volume_with_memory(session, [prompt]).objects[0]
    tracked = [step for step in present.steps if step.source in ("up", "down")]
    assert len(tracked) == SHAPE[0] - 1 and all(step.prompt["object_score"] > 0 for step in tracked)
    stops = [step for step in absent.steps if step.stop is not None]
    assert [(step.slice, step.area) for step in stops] == [(6, 0), (4, 0)]
    assert all(step.stop.startswith("object score") and step.prompt["object_score"] <= 0 for step in stops)
    assert not absent.mask.any()


def test_other_models_are_refused(phantom) -> None:
    volume, mask = phantom
    with VolumeSession(SamiaPredictor(build_model("tiny_sam")), volume, get_preset("percentile")) as session:
        with pytest.raises(ConfigurationError, match="memory propagation needs a SAM 2 family model.*tiny_sam"):
            segment_volume_with_memory(session, [VolumePrompt(box3d=box3d_of_mask(mask))])


def test_memory_tracking_on_an_exported_image_encoder_matches_torch(model, phantom, tmp_path) -> None:
    volume, mask = phantom
    prompt = VolumePrompt(box3d=box3d_of_mask(mask))
    answers = []
    for segmenter in (model, build_model("tiny_sam2", backend="openvino", cache=tmp_path)):
        with VolumeSession(SamiaPredictor(segmenter), volume, get_preset("percentile")) as session:
            answers.append(segment_volume_with_memory(session, [prompt], NO_STOP, keep_logits=True).objects[0])
    reference, exported = answers
    decided = np.abs(reference.logits) > 1e-2
    assert np.array_equal(exported.mask[decided], reference.mask[decided])
    assert decided.mean() > 0.95
