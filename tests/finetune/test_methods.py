"""Each method trains what it should, and nothing else, and its loss goes down on a fixed batch."""

import numpy as np
import pytest
import torch

from samia.data import build_manifest
from samia.embeddings import EmbeddingCache
from samia.finetuning.data import load_training_images
from samia.finetuning.methods import METHODS, make_optimizer, parameter_counts, prepare, set_training_mode
from samia.finetuning.step import TrainingStep, make_step_inputs
from samia.finetuning.training_prompts import TrainingPromptSampler
from samia.models import build_model
from samia.models.encoder_blocks import encoder_blocks

TRAINED = {
    "decoder": lambda name: name.startswith("mask_decoder."),
    "full": lambda name: name.startswith(("mask_decoder.", "image_encoder.")),
    "lora": lambda name: ".lora_A." in name or ".lora_B." in name,
    "adapter": lambda name: ".adapter." in name,
    "ssam": lambda name: name.startswith("image_encoder.") and (name.endswith((".scale", ".shift")) or ".norm" in name),
    "ua_adapter": lambda name: ".adapter." in name or name.startswith("latent."),
}
ONE_TRUTH_METHODS = [name for name in METHODS if name != "ua_adapter"]  # ua_adapter: tests/finetune/test_ua_training.py


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("method", "decoder_trains"), [("lora", True), ("adapter", True), ("ssam", False)])
def test_decoder_trains_by_default_with_lora_and_adapters_only(method, decoder_trains, make_config):
    config = make_config(method=method)
    assert config.train_decoder is decoder_trains
    model = build_model("tiny_sam")
    prepare(model, config)
    assert all(p.requires_grad is decoder_trains for p in model.mask_decoder.parameters())
    assert not make_config(method=method, train_decoder=False).train_decoder


@pytest.mark.parametrize("method", ONE_TRUTH_METHODS)
def test_method_trains_only_its_parameters_and_lowers_the_loss(method, make_config, tmp_path):
    config = make_config(method=method, lr=1e-3, correction_clicks=0, train_decoder=False)
    model = build_model("tiny_sam")
    cases = build_manifest(config.data)[:1]
    cache = EmbeddingCache(4, tmp_path / "embeddings") if METHODS[method].caches_embeddings else None
    image = load_training_images(cases, model, config, config.data, cache)[0]
    prepare(model, config)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(TRAINED[method](name) for name in trainable)
    before = _snapshot(model)
    step = TrainingStep(model, config.training.correction_clicks)
    optimizer = make_optimizer(model, config)
    sampler = TrainingPromptSampler.from_config(config)
    set_training_mode(model, True)
    losses = []
    for _ in range(6):  # the same prompts every time
        rng = np.random.default_rng(0)
        inputs = make_step_inputs(image, model, sampler, config.training.objects_per_image, rng, cache)
        optimizer.zero_grad()
        loss = step(inputs, rng)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    after = _snapshot(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= trainable, sorted(changed - trainable)[:5]
    for name in set(before) - trainable:  # frozen weights and buffers are bit-identical
        assert torch.equal(before[name], after[name]), name


def test_lora_and_adapters_reach_every_tinyvit_attention_block(make_config):
    model = build_model("tiny_litemedsam")
    image = torch.rand(1, 3, 256, 200) * 255
    with torch.no_grad():
        reference = model.encode(image)
    blocks = encoder_blocks(model.image_encoder)
    prepare(model, make_config(model="tiny_litemedsam", method="adapter"))
    assert len(blocks) == 3 and all(hasattr(b.attn, "adapter") and hasattr(b.mlp, "adapter") for b in blocks)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(image), reference)  # fresh adapters are the identity
    lora = build_model("tiny_litemedsam")
    prepare(lora, make_config(model="tiny_litemedsam", method="lora", lora_rank=2))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in lora.named_parameters() if ".lora_A." in name}
    assert adapted == {f"image_encoder.layers.{i}.blocks.0.attn.{part}" for i in (1, 2, 3) for part in ("qkv", "proj")}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_run_counts_the_parameters_its_method_trains(method, make_config):
    """The counts against the modules each method is meant to train, summed by name here."""
    model = build_model("tiny_sam")
    base_sizes = {name: p.numel() for name, p in model.named_parameters()}
    prepare(model, make_config(method=method, train_decoder=False))
    counts = parameter_counts(model)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    expected = sum(size for name, size in sizes.items() if TRAINED[method](name))
    assert counts["trainable_parameters"] == expected > 0
    # S-SAM holds each wrapped layer's weight as its SVD: it counts as the weight it stands for
    buffers = dict(model.named_buffers())
    stood_for = sum(size for name, size in base_sizes.items() if name.removesuffix(".weight") + ".u" in buffers)
    total = sum(sizes.values()) + stood_for
    assert counts["total_parameters"] == total
    assert counts["trainable_share"] == pytest.approx(expected / total)
    assert 0 < counts["trainable_share"] <= 1
