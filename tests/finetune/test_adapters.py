"""Adapter files: only the added weights, loadable everywhere a model loads, refused on another base."""

import pytest
import torch

from samia.errors import CheckpointError
from samia.finetuning.checkpoints import save_best
from samia.finetuning.methods import prepare
from samia.models import build_model, file_sha256
from samia.models.adapters import ADAPTER_FILE_KEY, read_adapter_file


def _outputs(model):
    torch.manual_seed(0)
    image = torch.rand(1, 3, model.input_size, model.input_size - 8) * 255
    with torch.no_grad():
        embedding = model.encode(image)
        logits, iou = model.decode_all(embedding, torch.tensor([[[20.0, 24.0]]]), torch.tensor([[1]]))
    return embedding, logits, iou


def _adapted(method, make_config, name="tiny_sam", train_decoder=False):
    model = build_model(name)
    spec = prepare(model, make_config(model=name, method=method, lora_rank=2, train_decoder=train_decoder))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:  # stand-in for training: move every added weight
                parameter.add_(0.05 * torch.randn_like(parameter))
    return model.eval(), spec


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_adapter_file_holds_only_adapters_and_reloads_through_build_model(method, make_config, tmp_path):
    model, spec = _adapted(method, make_config)
    path = tmp_path / "best.pt"
    save_best(path, model, spec, {"epoch": 3})
    stored = torch.load(path, weights_only=True)
    assert stored[ADAPTER_FILE_KEY]["base_weights_sha256"] == "random"
    assert stored[ADAPTER_FILE_KEY]["finetune"] == {"epoch": 3}
    assert stored["weights"] and all(("lora_" if method == "lora" else ".adapter.") in k for k in stored["weights"])
    base_size = sum(v.numel() for v in build_model("tiny_sam").state_dict().values())
    assert sum(v.numel() for v in stored["weights"].values()) < base_size / 4

    loaded = build_model("tiny_sam", path)
    assert loaded.weights_sha256 == file_sha256(path)
    for expected, actual in zip(_outputs(model), _outputs(loaded)):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(_outputs(build_model("tiny_sam"))[0], _outputs(loaded)[0])  # the adapter acts
    if method == "lora":  # merged into the base weights: a plain model again
        assert not any("lora" in k or "base_layer" in k for k in loaded.state_dict())


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_with_the_decoder_the_file_holds_it_too_and_reloads_to_the_trained_model(method, make_config, tmp_path):
    """SAMed's recipe: the encoder's added weights and the whole mask decoder train and are saved."""
    model, spec = _adapted(method, make_config, train_decoder=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    decoder = {f"mask_decoder.{name}" for name, _ in model.mask_decoder.named_parameters()}
    assert decoder <= trainable and trainable - decoder  # the decoder and the added weights
    path = tmp_path / "best.pt"
    save_best(path, model, spec, {})
    stored = torch.load(path, weights_only=True)
    assert stored[ADAPTER_FILE_KEY]["train_decoder"] is True
    assert {k for k in stored["weights"] if k.startswith("mask_decoder.")} == set(
        f"mask_decoder.{k}" for k in model.mask_decoder.state_dict()
    )
    loaded = build_model("tiny_sam", path)
    for expected, actual in zip(_outputs(model), _outputs(loaded)):
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)
    base_logits = _outputs(build_model("tiny_sam"))[1]
    assert not torch.allclose(base_logits, _outputs(loaded)[1])


def test_lora_file_for_another_base_model_names_both(make_config, tmp_path):
    model, spec = _adapted("lora", make_config)
    path = tmp_path / "lora_tiny_sam.pt"
    save_best(path, model, spec, {})
    with pytest.raises(CheckpointError) as raised:
        build_model("tiny_litemedsam", path)
    message = str(raised.value)
    assert "lora_tiny_sam.pt" in message and "'tiny_sam'" in message and "'tiny_litemedsam'" in message


def test_lora_file_for_other_base_weights_names_both_hashes(make_config, tmp_path):
    model, spec = _adapted("lora", make_config)
    base = tmp_path / "base.pt"
    torch.save(build_model("tiny_sam").state_dict(), base)
    path = tmp_path / "lora.pt"
    save_best(path, model, spec, {})
    stored = torch.load(path, weights_only=True)
    stored[ADAPTER_FILE_KEY]["base_checkpoint"] = str(base)  # trained on "random", now pointing at a file
    torch.save(stored, path)
    with pytest.raises(
        CheckpointError, match=rf"weights sha256 random, but the base weights have sha256 {file_sha256(base)}"
    ):
        build_model("tiny_sam", path)


def test_full_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "best.pt"
    save_best(path, build_model("tiny_sam"), None, {"epoch": 1})
    assert read_adapter_file(path) is None
    assert torch.equal(
        build_model("tiny_sam", path).mask_decoder.iou_token.weight,
        build_model("tiny_sam").mask_decoder.iou_token.weight,
    )
    with pytest.raises(CheckpointError, match="best.pt: does not fit a tiny_litemedsam checkpoint"):
        build_model("tiny_litemedsam", path)
