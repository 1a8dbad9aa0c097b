"""Speed levels (sampled chains filled by shape-based interpolation) and corrections that
re-propagate only what they change, with a tiny random model (the mechanics are exact whatever the
masks); the real weights' Dice against ``accurate`` is in tests/real/test_volume_real.py."""

from __future__ import annotations

import numpy as np
import pytest

from samia.data.phantoms import ellipsoid_mask
from samia.errors import ConfigurationError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.transforms import get_preset
from samia.types import Prompt, Volume
from samia.volume import KeySlice, PropagationSettings, VolumePrompt, VolumeSession, box3d_of_mask, segment_volume
from samia.volume.engine import CONVERGED_SLICES
from samia.volume.fill import interpolate_masks
from samia.volume.propagation import Sampling

SHAPE = (30, 40, 48)


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam")


@pytest.fixture(scope="module")
def phantom() -> tuple[Volume, np.ndarray]:
    ellipsoid = ellipsoid_mask(SHAPE, (14.5, 20, 24), (11, 10, 12))
    rng = np.random.default_rng(3)
    array = np.where(ellipsoid, 180.0, 40.0) + rng.normal(0, 8, SHAPE)
    return Volume(array.astype(np.float32), spacing=(2.0, 0.8, 0.8), path="phantom.nii.gz"), ellipsoid


def _segment(model, volume, prompts, **options):
    with VolumeSession(SamiaPredictor(model), volume, get_preset("percentile")) as session:
        return segment_volume(session, prompts, **options)


def _disc(radius: float, shape=(64, 64)) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - 31.5) ** 2 + (cols - 31.5) ** 2 <= radius**2


def test_interpolation_between_two_discs_grows_the_radius_linearly() -> None:
    small, large = _disc(6), _disc(18)
    between = interpolate_masks(small, large, 3)
    # the signed distance of a disc of radius r is |p - c| - r, so the mix at weight w is the disc
    # of radius (1 - w) r0 + w r1: 9, 12, 15 here, up to a pixel's rounding
    for mask, radius in zip(between, (9, 12, 15)):
        assert _disc(radius - 1).sum() <= mask.sum() <= _disc(radius + 1).sum()
        assert not (mask & ~_disc(radius + 1)).any() and (_disc(radius - 1) & ~mask).sum() == 0
    assert [m.sum() for m in interpolate_masks(small, small, 2)] == [small.sum()] * 2
    assert [m.any() for m in interpolate_masks(np.zeros_like(small), np.zeros_like(small), 2)] == [False, False]
    assert interpolate_masks(small, large, 0) == []


def test_a_sampled_chain_decodes_every_kth_slice_and_fills_the_others(model, phantom) -> None:
    volume, ellipsoid = phantom
    box = box3d_of_mask(ellipsoid)
    assert (box.z0, box.z1) == (4, 25)
    never_refine = Sampling(step=3, refine_below=0.0)
    result = _segment(model, volume, [VolumePrompt(box3d=box)], speed=never_refine)
    steps = {step.slice: step for step in result.objects[0].steps}
    key = box.middle(0)
    decoded = sorted(z for z, step in steps.items() if step.source != "filled")
    expected = sorted({key, box.z0, box.z1} | {z for z in range(box.z0, box.z1 + 1) if z % 3 == 0})
    assert decoded == expected
    assert sorted(steps) == list(range(box.z0, box.z1 + 1))  # every other slice of the range is filled
    assert result.slices_encoded == len(expected) and result.decodings == len(expected)
    for z, step in steps.items():
        np.testing.assert_array_equal(result.objects[0].mask[z].sum(), step.area)
        assert (step.source == "filled") == np.isnan(step.predicted_iou)


def test_a_gap_whose_ends_disagree_is_decoded_slice_by_slice(model, phantom) -> None:
    volume, ellipsoid = phantom
    prompt = VolumePrompt(box3d=box3d_of_mask(ellipsoid))
    accurate = _segment(model, volume, [prompt])
    always_refine = _segment(model, volume, [prompt], speed=Sampling(step=3, refine_below=1.0))
    # every jump whose two masks are not identical (all of them here) is refined, so each slice is
    # decoded from its neighbour exactly as `accurate` does
    assert not [s for s in always_refine.objects[0].steps if s.source == "filled"]
    np.testing.assert_array_equal(always_refine.objects[0].mask, accurate.objects[0].mask)
    assert always_refine.slices_encoded == accurate.slices_encoded
    assert always_refine.decodings > accurate.decodings  # the dropped sampled answers cost a decode each


def test_unknown_speed_and_bad_sampling_are_refused(model, phantom) -> None:
    volume, ellipsoid = phantom
    with pytest.raises(ConfigurationError, match="unknown speed 'quick'; choose one of accurate, default, fast"):
        _segment(model, volume, [VolumePrompt(box3d=box3d_of_mask(ellipsoid))], speed="quick")
    with pytest.raises(ConfigurationError, match="step must be >= 1"):
        Sampling(step=0)


def test_a_correction_that_changes_nothing_stops_each_chain_after_two_slices(model, phantom) -> None:
    volume, ellipsoid = phantom
    key = KeySlice(15, mask=ellipsoid[15])
    settings = PropagationSettings()  # no stop rule: each chain runs to the end of the volume
    first = _segment(model, volume, [VolumePrompt(key_slices=(key,))], settings=settings)
    assert first.decodings == SHAPE[0] - 1
    again = VolumePrompt(key_slices=(key,), current=first.objects[0].mask)
    second = _segment(model, volume, [again], settings=settings)
    assert second.decodings == 2 * CONVERGED_SLICES  # two chains, each stopped once it matched twice
    np.testing.assert_array_equal(second.objects[0].mask, first.objects[0].mask)


def test_a_correction_re_propagates_from_the_corrected_slice_only(model, phantom) -> None:
    volume, ellipsoid = phantom
    settings = PropagationSettings()
    first_key = KeySlice(15, mask=ellipsoid[15])
    first = _segment(model, volume, [VolumePrompt(key_slices=(first_key,))], settings=settings)
    corrected = KeySlice(24, prompt=Prompt(box=np.array([10.0, 8.0, 38.0, 32.0])))
    keys = (first_key, corrected)
    fresh = _segment(model, volume, [VolumePrompt(key_slices=keys)], settings=settings)
    correction = _segment(
        model, volume, [VolumePrompt(key_slices=keys, current=first.objects[0].mask)], settings=settings
    )
    assert correction.decodings < fresh.decodings
    touched = {s.slice for s in correction.objects[0].steps}
    untouched = [z for z in range(SHAPE[0]) if z not in touched]
    # slices no chain reached keep what the object had; the ones it reached are as a fresh run has them
    for z in untouched:
        np.testing.assert_array_equal(correction.objects[0].mask[z], first.objects[0].mask[z])
    for z in touched:
        np.testing.assert_array_equal(correction.objects[0].mask[z], fresh.objects[0].mask[z])


def test_where_a_corrected_object_now_ends_its_old_slices_are_cleared(model, phantom) -> None:
    volume, ellipsoid = phantom
    settings = PropagationSettings(min_predicted_iou=1.0)  # no mask reaches IoU 1: the chains stop at once
    key = KeySlice(15, mask=ellipsoid[15])
    stale = np.zeros(SHAPE, dtype=bool)
    stale[:, 5:35, 5:40] = True  # an old answer that reached every slice
    result = _segment(model, volume, [VolumePrompt(key_slices=(key,), current=stale)], settings=settings)
    assert result.decodings == 2  # each chain stopped on its first slice
    mask = result.objects[0].mask
    np.testing.assert_array_equal(mask[15], ellipsoid[15])
    assert not mask[:15].any() and not mask[16:].any()


def test_a_current_mask_of_another_shape_is_refused(model, phantom) -> None:
    volume, ellipsoid = phantom
    prompt = VolumePrompt(key_slices=(KeySlice(15, mask=ellipsoid[15]),), current=np.zeros((3, 4, 5), bool))
    with pytest.raises(ConfigurationError, match=r"phantom.nii.gz: the current mask is \(3, 4, 5\), the volume"):
        _segment(model, volume, [prompt])


def test_a_settled_keys_chains_are_not_run_again(model, phantom) -> None:
    volume, ellipsoid = phantom
    settings = PropagationSettings()
    first = _segment(model, volume, [VolumePrompt(key_slices=(KeySlice(15, mask=ellipsoid[15]),))], settings=settings)
    keys = (KeySlice(15, mask=ellipsoid[15], settled=True), KeySlice(22, mask=ellipsoid[22]))
    current = first.objects[0].mask
    correction = _segment(model, volume, [VolumePrompt(key_slices=keys, current=current)], settings=settings)
    # only slice 22's two chains run (down to 19, up to the end), each until it matches twice
    assert {s.slice for s in correction.objects[0].steps if s.source in ("up", "down")} <= set(range(19, 30))
    assert correction.decodings <= 2 * CONVERGED_SLICES + (30 - 19)
    np.testing.assert_array_equal(correction.objects[0].mask[:19], current[:19])
    # without a current mask `settled` means nothing: every chain runs
    fresh = _segment(model, volume, [VolumePrompt(key_slices=keys)], settings=settings)
    assert {s.slice for s in fresh.objects[0].steps if s.source == "down"} >= set(range(0, 15))
