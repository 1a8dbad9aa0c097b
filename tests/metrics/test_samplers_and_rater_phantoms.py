"""A deterministic model as a sampler (multimask candidates, prompt jitter, flips and transpositions
of the image), and the seeded rater phantom whose raters follow their documented rules."""

from __future__ import annotations

import numpy as np
import pytest

from samia.data.rater_phantoms import RATER_MODELS, rater_phantom
from samia.errors import ConfigurationError
from samia.metrics.multirater import mean_mask
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.prompts.primitives import tight_box
from samia.samplers import (
    FLIPS,
    flip_image,
    flip_prompt,
    flip_samples,
    jitter_samples,
    multimask_samples,
    unflip_mask,
)
from samia.transforms import get_preset, to_rgb_uint8
from samia.types import Prompt


@pytest.fixture(scope="module")
def phantom():
    return rater_phantom(np.random.default_rng(0), shape=(60, 80))


@pytest.fixture(scope="module")
def predictor(phantom):
    predictor = SamiaPredictor(build_model("tiny_sam"))
    predictor.set_image(to_rgb_uint8(phantom.image, get_preset("percentile")))
    return predictor


def test_each_rater_follows_its_rule(phantom) -> None:
    masks = dict(zip([r.name for r in phantom.raters], phantom.masks))
    assert np.array_equal(masks["exact_without_lobe"], phantom.core)
    assert np.array_equal(masks["exact_with_lobe"], phantom.core | phantom.ambiguous)
    assert (masks["generous"] >= masks["exact_with_lobe"]).all() and masks["generous"].sum() > masks[
        "exact_with_lobe"
    ].sum()
    assert (masks["tight_smooth"] <= phantom.core).all() and 0 < masks["tight_smooth"].sum() < phantom.core.sum()
    assert phantom.ambiguous.any() and not (phantom.ambiguous & phantom.core).any()
    again = rater_phantom(np.random.default_rng(0), shape=(60, 80))
    assert np.array_equal(again.masks, phantom.masks) and again.raters == RATER_MODELS  # seeded
    lobe = phantom.image.array[phantom.ambiguous].mean()
    assert (
        phantom.image.array[~(phantom.core | phantom.ambiguous)].mean()
        < lobe
        < phantom.image.array[phantom.core].mean()
    )


def test_multimask_and_jitter_samples(phantom, predictor) -> None:
    prompt = Prompt(box=tight_box(phantom.core))
    candidates = multimask_samples(predictor, prompt)
    assert np.array_equal(candidates, predictor.predict(prompt, multimask_output=True).masks)
    samples = jitter_samples(predictor, prompt, 5, np.random.default_rng(1), fraction=0.2)
    assert samples.shape == (5, 60, 80)
    assert np.array_equal(samples[0], predictor.predict(prompt, multimask_output=False).masks[0])
    again = jitter_samples(predictor, prompt, 5, np.random.default_rng(1), fraction=0.2)
    assert np.array_equal(samples, again)  # the generator is the only randomness
    unmoved = jitter_samples(predictor, prompt, 3, np.random.default_rng(2), fraction=0.0)
    assert all(np.array_equal(unmoved[0], mask) for mask in unmoved)
    probability = mean_mask(samples)
    assert probability.min() >= 0 and probability.max() <= 1 and np.allclose(probability, samples.mean(axis=0))
    with pytest.raises(ConfigurationError, match="at least one sample"):
        jitter_samples(predictor, prompt, 0, np.random.default_rng(0))


@pytest.mark.parametrize("transform", FLIPS)
def test_each_flip_maps_image_prompt_and_answer_consistently(transform) -> None:
    mask = np.zeros((30, 50), bool)
    mask[4:11, 30:47] = True  # off-centre, non-square
    moved_mask = flip_image(mask, *transform)
    assert np.array_equal(unflip_mask(moved_mask, *transform), mask)
    prompt = flip_prompt(
        Prompt(box=tight_box(mask), points=np.array([[30.0, 4.0]]), labels=np.array([1])), *transform, mask.shape
    )
    assert np.array_equal(prompt.box, tight_box(moved_mask))  # the box follows the pixels
    x, y = prompt.points[0].astype(int)
    corner = np.zeros_like(mask)
    corner[4, 30] = True
    assert flip_image(corner, *transform)[y, x]  # the point lands on the same pixel


def test_flip_samples_start_with_the_image_as_it_is(phantom, predictor) -> None:
    rgb = to_rgb_uint8(phantom.image, get_preset("percentile"))
    prompt = Prompt(box=tight_box(phantom.core))
    direct = predictor.predict(prompt, multimask_output=False).masks[0]
    samples = flip_samples(predictor, rgb, prompt, count=8)
    assert samples.shape == (8, 60, 80) and np.array_equal(samples[0], direct)
    assert np.array_equal(predictor.predict(prompt, multimask_output=False).masks[0], direct)  # image restored
    with pytest.raises(ConfigurationError, match="1..8"):
        flip_samples(predictor, rgb, prompt, count=9)
