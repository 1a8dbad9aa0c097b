"""S-SAM: the singular-value re-parametrisation against numpy's SVD, what it trains, and its merged
export, which loads as a plain checkpoint of the base model and gives the trained model's outputs."""

import numpy as np
import pytest
import torch
from torch import nn

from samia.errors import ConfigurationError
from samia.finetuning import finetune
from samia.finetuning.checkpoints import save_best
from samia.finetuning.methods import prepare
from samia.models import build_model
from samia.models.svd_tuning import SVDLinear, attach_svd


def test_the_layer_is_the_linear_at_first_and_follows_the_rule_after():
    torch.manual_seed(0)
    linear = nn.Linear(12, 20)
    layer = SVDLinear(linear)
    x = torch.randn(5, 12)
    torch.testing.assert_close(layer(x), linear(x), atol=1e-5, rtol=1e-5)  # ReLU(1 * s + 0) = s
    with torch.no_grad():
        layer.scale.copy_(torch.linspace(-0.5, 2.0, 12))
        layer.shift.copy_(torch.linspace(-0.3, 0.3, 12))
    # the rule, from numpy's own SVD of the original weight: W' = U diag(max(a s + b, 0)) V^T
    u, s, vh = np.linalg.svd(linear.weight.detach().double().numpy(), full_matrices=False)
    a, b = layer.scale.detach().double().numpy(), layer.shift.detach().double().numpy()
    expected = (u * np.maximum(a * s + b, 0.0)) @ vh
    np.testing.assert_allclose(layer.weight().detach().double().numpy(), expected, atol=1e-5)
    merged = layer.merged()
    torch.testing.assert_close(merged(x), layer(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_name", ["tiny_sam", "tiny_litemedsam"])
def test_a_wrapped_encoder_is_the_base_encoder_until_trained(model_name):
    model = build_model(model_name).eval()
    x = torch.rand(1, 3, model.input_size, model.input_size)
    with torch.no_grad():
        before = model.image_encoder(x)
        wrapped = attach_svd(model.image_encoder)
        after = model.image_encoder(x)
    assert wrapped == 4 * len([m for m in model.image_encoder.modules() if hasattr(m, "attn") and hasattr(m, "mlp")])
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_the_merged_export_loads_as_the_base_architecture_and_gives_the_trained_outputs(make_config, tmp_path):
    config = make_config(method="ssam", train_decoder=True)
    model = build_model("tiny_sam")
    prepare(model, config)
    assert any(p.requires_grad for p in model.mask_decoder.parameters())  # --train-decoder
    torch.manual_seed(1)
    with torch.no_grad():  # stands for training: every trainable tensor moves
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    path = tmp_path / "best.pt"
    save_best(path, model, None, {"method": "ssam"})
    loaded = build_model("tiny_sam", path).eval()
    assert not [m for m in loaded.modules() if isinstance(m, SVDLinear)]  # plain linear layers
    model.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        trained, reloaded, base = (
            model.image_encoder(x),
            loaded.image_encoder(x),
            build_model("tiny_sam").image_encoder(x),
        )
    torch.testing.assert_close(reloaded, trained, atol=1e-5, rtol=1e-5)
    assert (trained - base).abs().max() > 1e-2
    for name, value in model.mask_decoder.state_dict().items():
        torch.testing.assert_close(loaded.mask_decoder.state_dict()[name], value)


def test_an_ssam_run_trains_and_its_best_checkpoint_evaluates(make_config, phantom_val, assert_evaluates):
    outcome = finetune(make_config(method="ssam", val=str(phantom_val), epochs=1, lr=1e-2))
    assert outcome.history["train_loss"].iloc[1:].notna().all()
    assert 0 < outcome.parameters["trainable_share"] < 0.05
    assert_evaluates(outcome.best_path, phantom_val)


def test_ssam_on_a_model_without_transformer_blocks_is_refused(make_config):
    model = build_model("tiny_sam")
    model.image_encoder = nn.Sequential(nn.Conv2d(3, 32, 16, stride=16))  # no transformer block
    with pytest.raises(ConfigurationError, match="--method ssam does not apply to tiny_sam"):
        prepare(model, make_config(method="ssam"))
