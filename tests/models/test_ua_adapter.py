"""The Uncertainty-aware Adapter's pieces: a fresh adapter is the base model, the encoder split is
exact, codes reach the windowed blocks image by image and the mask decoder, the KL matches
torch.distributions, the adapter file reloads to the same samples, and one-answer paths are refused."""

import numpy as np
import pytest
import torch

from samia.errors import ConfigurationError
from samia.models import build_model
from samia.models.adapters import AdapterSpec, attach, read_adapter_file, save_adapter_file
from samia.models.ua_adapter import (
    LATENT_CONTEXT,
    LATENT_GRID,
    decode_with_latent,
    decoder_blocks,
    encode_with_latent,
    kl_divergence,
    latent_inputs,
    latent_nets,
    latent_samples,
    posterior_inputs,
    prefix_features,
    split_encoder,
)
from samia.predictor import SamiaPredictor

MODELS = ["tiny_litemedsam", "tiny_sam"]


def _ua(name: str, blocks: int = 2, perturb: bool = True):
    model = build_model(name)
    spec = AdapterSpec("ua_adapter", name, model.weights_sha256, adapter_ratio=0.25, latent_dim=4, latent_blocks=blocks)
    attach(model, spec)
    if perturb:  # trained adapters: the up projections and the prior's head no longer zero
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name_, parameter in model.named_parameters():
                if ".adapter.up." in name_ or name_.startswith("latent.prior.head"):
                    parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return model.eval(), spec


def _pixels(model, seed=0):
    side = model.input_size
    return torch.as_tensor(np.random.default_rng(seed).integers(0, 255, (1, 3, side, side)), dtype=torch.float32)


@pytest.mark.parametrize("name", MODELS)
def test_a_fresh_adapter_is_the_base_model_whatever_the_code(name):
    base = build_model(name).eval()
    model, _ = _ua(name, perturb=False)
    pixels = _pixels(model)
    with torch.no_grad():
        expected = base.encode(pixels)
        got = encode_with_latent(model, prefix_features(model, pixels), torch.randn(3, 4))
    assert got.shape == (3, *expected.shape[1:])
    torch.testing.assert_close(got, expected.expand_as(got), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("blocks", [0, 1, 2])
def test_prefix_and_suffix_are_the_encoder(name, blocks):
    model, _ = _ua(name, blocks)
    normalized = model.normalize_and_pad(_pixels(model))
    split = split_encoder(model, blocks)
    latent_nets(model).z = torch.randn(1, 4)
    with torch.no_grad():
        torch.testing.assert_close(split.suffix(split.prefix(normalized)), model.image_encoder(normalized))
    latent_nets(model).z = None


@pytest.mark.parametrize("name", MODELS)
def test_each_code_conditions_its_own_image_in_a_batch(name):
    """TinyViT and SAM's ViT attend within windows: a batch of codes must reach each image's windows."""
    model, _ = _ua(name, blocks=0)
    features = prefix_features(model, _pixels(model))
    codes = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        batched = encode_with_latent(model, features, codes)
        one_by_one = torch.cat([encode_with_latent(model, features, code[None]) for code in codes])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-4, atol=1e-5)
    assert (batched[0] - batched[1]).abs().max() > 1e-3  # the codes change the embedding


@pytest.mark.parametrize("name", MODELS)
def test_the_code_reaches_the_mask_decoder(name):
    """Each two-way block of the decoder carries a conditioned adapter on its token MLP: fresh, the
    decoder is the base one whatever the code; trained, two codes give two masks for one embedding."""
    base = build_model(name).eval()
    fresh, _ = _ua(name, perturb=False)
    blocks = decoder_blocks(fresh)
    assert len(blocks) == len(base.mask_decoder.transformer.layers) and all(hasattr(b.mlp, "adapter") for b in blocks)
    boxes = torch.tensor([[30.0, 40.0, 150.0, 170.0]])
    with torch.no_grad():
        embedding = base.encode(_pixels(base))
        expected, _ = base.decode_all(embedding, boxes=boxes)
        got, _ = decode_with_latent(fresh, embedding, torch.randn(1, 4), boxes)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    trained, _ = _ua(name)
    with torch.no_grad():
        first, _ = decode_with_latent(trained, embedding, torch.full((1, 4), -1.0), boxes)
        second, _ = decode_with_latent(trained, embedding, torch.full((1, 4), 1.0), boxes)
    assert (first - second).abs().max() > 1e-3
    assert latent_nets(trained).z is None  # the code is set for one pass only


def test_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(2)
    q = (torch.randn(5, 6, generator=generator), torch.randn(5, 6, generator=generator) * 0.5)
    p = (torch.randn(5, 6, generator=generator), torch.randn(5, 6, generator=generator) * 0.5)
    normal = torch.distributions.Normal
    expected = torch.distributions.kl_divergence(normal(q[0], q[1].exp()), normal(p[0], p[1].exp())).sum(-1)
    torch.testing.assert_close(kl_divergence(q, p), expected)
    assert torch.allclose(kl_divergence(q, q), torch.zeros(5), atol=1e-6)


def test_the_latent_nets_see_the_box_window_with_image_box_and_mask_aligned():
    """A bright rectangle exactly under the box: in the window, the image is bright where the box
    channel is 1 and dark elsewhere (border cells aside), the box spans 1/LATENT_CONTEXT of the window's side along its
    longer side, and a rater mask equal to the box lands on the box channel."""
    model, _ = _ua("tiny_litemedsam")
    side = model.input_size
    x0, y0, x1, y1 = 40, 100, 159, 159  # 120 x 60 pixels
    pixels = torch.zeros(1, 3, side, side)
    pixels[..., y0 : y1 + 1, x0 : x1 + 1] = 255.0
    boxes = torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32)
    inputs = latent_inputs(model, pixels, boxes)
    assert inputs.shape == (1, 4, LATENT_GRID, LATENT_GRID)
    image, box = inputs[0, 0], inputs[0, 3]
    columns, rows = box.any(dim=0).sum().item(), box.any(dim=1).sum().item()
    assert abs(columns - LATENT_GRID / LATENT_CONTEXT) <= 1 and abs(rows - LATENT_GRID / LATENT_CONTEXT / 2) <= 1
    assert ((image > 0.5) == (box > 0)).float().mean() > 0.97  # cells on the border are part bright
    mask = torch.zeros(1, 1, model.low_res_size, model.low_res_size)
    scale = model.low_res_size / side
    mask[..., round(y0 * scale) : round((y1 + 1) * scale), round(x0 * scale) : round((x1 + 1) * scale)] = 1.0
    with_mask = posterior_inputs(model, inputs, mask, boxes)
    assert with_mask.shape == (1, 5, LATENT_GRID, LATENT_GRID)
    assert ((with_mask[0, 4] > 0.5) == (box > 0)).float().mean() > 0.97


def test_samples_are_seeded_start_at_the_prior_mean_and_reload_from_the_file(tmp_path):
    model, spec = _ua("tiny_litemedsam")
    image = np.random.default_rng(3).integers(0, 255, (256, 256, 3)).astype(np.uint8)
    box = np.array([40.0, 50.0, 160.0, 170.0])
    first = latent_samples(model, image, box, 4, seed=7)
    assert first.shape == (4, 1, model.low_res_size, model.low_res_size)
    torch.testing.assert_close(latent_samples(model, image, box, 4, seed=7), first)
    assert not torch.equal(latent_samples(model, image, box, 4, seed=8)[1:], first[1:])
    torch.testing.assert_close(latent_samples(model, image, box, 1, seed=8), first[:1])  # the mean: seed-free
    save_adapter_file(tmp_path / "ua.pt", model, spec, {"epoch": 1})
    file = read_adapter_file(tmp_path / "ua.pt")
    assert file is not None and any(k.startswith("latent.prior.") for k in file.weights)
    assert all(".adapter." in k or k.startswith("latent.") for k in file.weights)
    assert any(k.startswith("mask_decoder.") and ".adapter." in k for k in file.weights)
    reloaded = build_model("tiny_litemedsam", tmp_path / "ua.pt")
    torch.testing.assert_close(latent_samples(reloaded, image, box, 4, seed=7), first)


def test_one_answer_paths_are_refused_in_one_line():
    model, _ = _ua("tiny_litemedsam")
    with pytest.raises(ConfigurationError, match="answers with samples of its latent code"):
        SamiaPredictor(model).set_image(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ConfigurationError, match="carries no ua_adapter"):
        latent_samples(build_model("tiny_litemedsam"), np.zeros((256, 256, 3), np.uint8), np.ones(4), 2, 0)
