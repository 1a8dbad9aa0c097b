"""The volume engine's mechanics with a tiny random model: encode-once scheduling, key slices, stop
rules, projections, slicing axes, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from samia.data.phantoms import bent_tube_mask, ellipsoid_mask
from samia.embeddings import EmbeddingCache
from samia.errors import ConfigurationError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset
from samia.types import Prompt, Volume
from samia.volume import (
    Box3D,
    KeySlice,
    PropagationSettings,
    VolumePrompt,
    VolumeSession,
    box3d_of_mask,
    segment_volume,
)

SHAPE = (24, 40, 48)


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam")


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, list[np.ndarray]]:
    """An ellipsoid and a bent tube with overlapping z-ranges (5..18 and 8..21)."""
    ellipsoid = ellipsoid_mask(SHAPE, (11.5, 14, 14), (7, 8, 9))
    tube = bent_tube_mask(SHAPE, start=(28, 22), bend=14, radius=4, z_range=(8, 21))
    rng = np.random.default_rng(0)
    array = np.where(ellipsoid | tube, 180.0, 40.0) + rng.normal(0, 8, SHAPE)
    return Volume(array.astype(np.float32), spacing=(3.0, 0.8, 0.7), path="phantom.nii.gz"), [ellipsoid, tube]


def _session(model, volume, axis=0, cache=None, keep_all=False):
    return VolumeSession(SamiaPredictor(model, cache), volume, get_preset("percentile"), axis, keep_all)


def test_each_slice_is_encoded_once_and_all_objects_of_a_slice_decode_together(model, phantom) -> None:
    volume, masks = phantom
    boxes = [box3d_of_mask(m) for m in masks]
    assert (boxes[0].z0, boxes[0].z1, boxes[1].z0, boxes[1].z1) == (5, 18, 8, 21)
    calls: list[int] = []
    with _session(model, volume, keep_all=True) as session:
        original = session.predictor.predict_batch

        def counting(prompts, *args, **kwargs):
            calls.append(len(prompts))
            return original(prompts, *args, **kwargs)

        session.predictor.predict_batch = counting  # count decoder batches (the real decoder runs)
        result = segment_volume(session, [VolumePrompt(box3d=b) for b in boxes])
        assert result.slices_encoded == 21 - 5 + 1  # the union of the ranges, once
        assert result.decodings == 14 + 14
        assert sum(calls) == 28 and max(calls) == 2  # both objects in one batch where both are
        again = segment_volume(session, [VolumePrompt(box3d=b) for b in boxes])
        assert again.slices_encoded == 0 and again.decodings == 28  # keep_all: the session kept every embedding
        assert [np.array_equal(a.mask, b.mask) for a, b in zip(result.objects, again.objects)] == [True, True]
    assert session.predictor.cache.max_items == 1  # memory: the predictor's 1-entry LRU, not the slices


def test_slices_no_chain_reaches_are_never_encoded(model, phantom) -> None:
    volume, _ = phantom
    settings = PropagationSettings(min_predicted_iou=1.0)  # no mask reaches IoU 1: stops at once
    with _session(model, volume) as session:
        key = KeySlice(12, Prompt(box=np.array([5.0, 6.0, 23.0, 22.0])))
        result = segment_volume(session, [VolumePrompt(key_slices=(key,))], settings)
    assert result.slices_encoded == 3  # the key slice and one slice on each side
    steps = {s.slice: s for s in result.objects[0].steps}
    assert sorted(steps) == [11, 12, 13] and steps[11].stop and steps[13].stop
    assert steps[11].area == 0 and result.objects[0].mask[[11, 13]].sum() == 0  # a stopping slice is dropped


def test_a_disk_cache_makes_a_second_session_encode_nothing(model, phantom, tmp_path) -> None:
    volume, masks = phantom
    prompt = [VolumePrompt(box3d=box3d_of_mask(masks[0]))]
    with _session(model, volume, cache=EmbeddingCache(2, tmp_path)) as session:
        assert segment_volume(session, prompt).slices_encoded == 14
    with _session(model, volume, cache=EmbeddingCache(2, tmp_path)) as session:
        assert segment_volume(session, prompt).slices_encoded == 0


def test_several_key_slices_fill_each_gap_from_both_ends(model, phantom) -> None:
    volume, _ = phantom
    box = Prompt(box=np.array([4.0, 5.0, 24.0, 24.0]))
    keys = (KeySlice(6, box), KeySlice(13, box), KeySlice(16, box))
    settings = PropagationSettings()  # no stop rule: the bounds only
    with _session(model, volume) as session:
        answer = segment_volume(session, [VolumePrompt(key_slices=keys, bounds=(4, 19))], settings).objects[0]
    source = {s.slice: s.source for s in answer.steps}
    assert source == {
        4: "down", 5: "down", 6: "key", 7: "up", 8: "up", 9: "up",  # (6 + 13) // 2 = 9
        10: "down", 11: "down", 12: "down", 13: "key", 14: "up", 15: "down", 16: "key",
        17: "up", 18: "up", 19: "up",
    }  # fmt: skip
    assert len(answer.steps) == 16  # every slice once


def test_a_given_key_slice_mask_is_kept_and_not_decoded(model, phantom) -> None:
    volume, masks = phantom
    given = masks[0][12]
    with _session(model, volume) as session:
        result = segment_volume(
            session, [VolumePrompt(key_slices=(KeySlice(12, mask=given),), bounds=(10, 14))], PropagationSettings()
        )
    answer = result.objects[0]
    assert np.array_equal(answer.mask[12], given)
    assert result.decodings == 4 and result.slices_encoded == 4  # slices 10, 11, 13, 14
    assert [s.source for s in answer.steps if s.slice == 12] == ["mask"]


@pytest.mark.parametrize("projection", ["box", "box_mask", "points", "mask"])
def test_every_projection_propagates_its_own_prompt_kind(model, phantom, projection) -> None:
    volume, masks = phantom
    key = KeySlice(12, mask=masks[0][12])
    with _session(model, volume) as session:
        answer = segment_volume(
            session, [VolumePrompt(key_slices=(key,), bounds=(11, 13))], PropagationSettings(projection=projection)
        ).objects[0]
    propagated = [s for s in answer.steps if s.source in ("up", "down")]
    assert {s.prompt["projection"] for s in propagated} == {projection}
    first = next(s for s in propagated if s.slice == 13)
    if projection in ("box", "box_mask"):
        assert first.prompt["box"] is not None and first.prompt["points"] is None
    elif projection == "points":
        assert first.prompt["labels"][0] == 1 and first.prompt["box"] is None
        x, y = first.prompt["points"][0]
        assert masks[0][12][int(y), int(x)]  # the positive point lies inside the previous mask
    else:
        assert first.prompt["box"] is None and first.prompt["points"] is None


def test_consecutive_empty_slices_stop_propagation(model) -> None:
    volume = Volume(np.random.default_rng(1).normal(0, 1, (12, 32, 32)).astype(np.float32), path="noise")
    empty = np.zeros((32, 32), dtype=bool)
    with _session(model, volume) as session:
        answer = segment_volume(
            session, [VolumePrompt(key_slices=(KeySlice(6, mask=empty),))], PropagationSettings(max_empty=1)
        ).objects[0]
    # an empty key mask and no prompt to fall back on: nothing to propagate, nothing encoded
    assert [s.slice for s in answer.steps] == [6] and session.slices_encoded == 0


def test_low_overlap_with_the_previous_slice_stops(model, phantom) -> None:
    volume, masks = phantom
    key = KeySlice(12, mask=np.roll(masks[0][12], 15, axis=1))  # a key mask far from where the model looks
    with _session(model, volume) as session:
        strict = segment_volume(
            session, [VolumePrompt(key_slices=(key,))], PropagationSettings(min_iou_with_previous=1.0)
        ).objects[0]
    stops = [s for s in strict.steps if s.stop]
    assert len(stops) == 2 and all("IoU with previous" in s.stop for s in stops)
    assert sorted(s.slice for s in strict.steps) == [11, 12, 13]


@pytest.mark.parametrize("axis", [1, 2])
def test_any_axis_slices_as_axis_0_of_the_moved_volume(model, phantom, axis) -> None:
    volume, masks = phantom
    box = box3d_of_mask(masks[1])
    moved = Volume(np.ascontiguousarray(np.moveaxis(volume.array, axis, 0)), path="moved")
    low, high, box2d = box.along(axis)
    # the same box in the moved volume's coordinates: its planes are the original's, its z the axis
    moved_box = Box3D(int(box2d[0]), int(box2d[1]), low, int(box2d[2]), int(box2d[3]), high)
    with _session(model, volume, axis=axis) as session:
        along = segment_volume(session, [VolumePrompt(box3d=box)]).objects[0]
    with _session(model, moved, axis=0) as session:
        reference = segment_volume(session, [VolumePrompt(box3d=moved_box)]).objects[0]
    assert along.mask.shape == SHAPE
    assert np.array_equal(np.moveaxis(along.mask, axis, 0), reference.mask)
    assert along.key_slices == [box.middle(axis)]


def test_prompts_outside_the_volume_are_refused_naming_it(model, phantom) -> None:
    volume, _ = phantom
    with pytest.raises(ConfigurationError, match=r"phantom.nii.gz.*z1 = 3 < z0 = 5"):
        Box3D.from_values([1, 1, 5, 10, 10, 3], volume.shape, "phantom.nii.gz")
    with pytest.raises(ConfigurationError, match=r"x must lie in 0..47"):
        Box3D.from_values([1, 1, 1, 48, 10, 3], volume.shape, "phantom.nii.gz")
    with pytest.raises(ConfigurationError, match=r"six numbers"):
        Box3D.from_values([1, 1, 1, 4], volume.shape, "phantom.nii.gz")
    with _session(model, volume) as session:
        key = KeySlice(30, Prompt(box=np.array([1.0, 1.0, 5.0, 5.0])))
        with pytest.raises(ConfigurationError, match=r"phantom.nii.gz: key slice 30 lies outside"):
            segment_volume(session, [VolumePrompt(key_slices=(key,))])
        off = KeySlice(3, Prompt(box=np.array([100.0, 100.0, 120.0, 120.0])))
        with pytest.raises(ConfigurationError, match=r"impossible prompt on slice 3"):
            segment_volume(session, [VolumePrompt(key_slices=(off,))])


def test_without_keep_all_only_slices_both_sweeps_need_are_kept(model, phantom, tmp_path) -> None:
    volume, masks = phantom
    boxes = [box3d_of_mask(m) for m in masks]  # middles 11 and 14: 11..13 are up for one, down for the other
    with _session(model, volume) as session:
        result = segment_volume(session, [VolumePrompt(box3d=b) for b in boxes])
        assert result.slices_encoded == 17  # still once each
        assert session.kept_slices == [11, 12, 13]
        assert segment_volume(session, [VolumePrompt(box3d=boxes[0])]).slices_encoded == 14 - 3


def test_a_passed_deadline_ends_the_chains_but_decodes_the_key_slices(model, phantom) -> None:
    volume, masks = phantom
    keys = (
        KeySlice(8, Prompt(box=np.array([5.0, 6.0, 23.0, 22.0]))),
        KeySlice(15, Prompt(box=np.array([5.0, 6.0, 23.0, 22.0]))),
    )
    with _session(model, volume) as session:
        whole = segment_volume(session, [VolumePrompt(key_slices=keys)])
        cut = segment_volume(session, [VolumePrompt(key_slices=keys)], deadline=0.0)  # long passed
        assert whole.finished and not cut.finished
        assert cut.decodings == 2 and cut.objects[0].key_slices == [8, 15]
        assert np.flatnonzero(cut.objects[0].mask.any(axis=(1, 2))).tolist() == [8, 15]
        assert np.array_equal(cut.objects[0].mask[[8, 15]], whole.objects[0].mask[[8, 15]])
        # a correction cut short keeps the current mask wherever its chains did not reach
        current = whole.objects[0].mask
        moved = (
            KeySlice(12, Prompt(box=np.array([6.0, 7.0, 22.0, 21.0]))),
            *(KeySlice(k.index, k.prompt, settled=True) for k in keys),
        )
        corrected = segment_volume(session, [VolumePrompt(key_slices=moved, current=current)], deadline=0.0)
        assert not corrected.finished and corrected.decodings == 3  # the key slices, no chain
        untouched = [z for z in range(SHAPE[0]) if z != 12]
        assert np.array_equal(corrected.objects[0].mask[untouched], current[untouched])
