"""SAM 2.1 through samia's predictor equals Meta's ``sam2`` ``SAM2ImagePredictor`` on the same
seeded random weights of the real Hiera-T architecture: boxes, clicks, both, clicks with the previous
low-resolution logits fed back, single and multimask output. The registry builds the family, refuses
a checkpoint of another architecture by name, and packs SAM 2's high-resolution maps into one
embedding (four times SAM 1's channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

sam2_image_predictor = pytest.importorskip("sam2.sam2_image_predictor", reason="samia[sam2] is not installed")

from samia.errors import CheckpointError  # noqa: E402
from samia.models import build_model  # noqa: E402
from samia.models.sam2_family import SAM2_CONFIGS, Sam2Segmenter, build_sam2_base  # noqa: E402
from samia.predictor import SamiaPredictor  # noqa: E402
from samia.types import Prompt  # noqa: E402


@pytest.fixture(scope="module")
def base():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_sam2_base(SAM2_CONFIGS["sam2.1_hiera_tiny"])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    rgb = (rng.random((300, 400, 3)) * 60 + 30).astype(np.uint8)
    rgb[100:200, 150:300] = 200
    return rgb


@pytest.fixture(scope="module")
def both(base, image):
    """samia's predictor and sam2's, the same weights, the same image set."""
    samia = SamiaPredictor(Sam2Segmenter(base, "sam2.1_hiera_tiny").eval())
    samia.set_image(image)
    reference = sam2_image_predictor.SAM2ImagePredictor(base)
    reference.set_image(image)
    return samia, reference


BOX = np.array([150.0, 100.0, 300.0, 200.0])
CLICKS = np.array([[220.0, 150.0], [160.0, 105.0]])
LABELS = np.array([1, 0])


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("kind", ["box", "clicks", "box+clicks", "clicks+previous-logits"])
def test_outputs_equal_sam2_image_predictor(both, kind: str, multimask: bool) -> None:
    samia, reference = both
    box = BOX if "box" in kind else None
    clicks, labels = (CLICKS, LABELS) if "clicks" in kind else (None, None)
    previous = None
    if kind == "clicks+previous-logits":
        _, scores, low = reference.predict(box=BOX, multimask_output=True, return_logits=True)
        previous = low[int(np.argmax(scores))]
    logits, iou, low = reference.predict(
        point_coords=clicks,
        point_labels=labels,
        box=box,
        mask_input=None if previous is None else previous[None],
        multimask_output=multimask,
        return_logits=True,
    )
    prompt = Prompt(points=clicks, labels=labels, box=box, mask_input=previous)
    prediction = samia.predict(prompt, multimask_output=multimask)
    mine = np.clip(prediction.low_res_logits, -32.0, 32.0)  # the predictor hands back clamped logits
    decided = np.abs(low) > 1e-3
    assert np.abs(mine - low)[decided].max() < 1e-4
    assert np.abs(prediction.iou_predictions - iou).max() < 1e-4
    clear = np.abs(logits) > 1e-3  # upsampling: OpenCV against torch, equal to ~1e-5 on logits
    assert np.array_equal(prediction.masks[clear], (logits > 0)[clear])
    assert clear.mean() > 0.9  # the comparison covers nearly every pixel


def test_the_packed_embedding_holds_the_high_resolution_maps_losslessly(base, image) -> None:
    model = Sam2Segmenter(base, "sam2.1_hiera_tiny").eval()
    assert model.embedding_shape == (1, 256 + 4 * 64 + 16 * 32, 64, 64)  # 4x SAM 1's (1, 256, 64, 64)
    reference = sam2_image_predictor.SAM2ImagePredictor(base)
    reference.set_image(image)
    packed = SamiaPredictor(model)
    packed.set_image(image)
    embed, high_res = model.unpack(torch.as_tensor(packed.image_embedding))
    assert torch.allclose(embed, reference._features["image_embed"], atol=1e-4)
    for mine, theirs in zip(high_res, reference._features["high_res_feats"]):
        assert mine.shape == theirs.shape and torch.allclose(mine, theirs, atol=1e-4)


def test_tiny_sam2_is_seeded_and_segments_through_the_registry() -> None:
    first, second = build_model("tiny_sam2"), build_model("tiny_sam2")
    assert first.input_pipeline == "sam2" and first.weights_sha256 == "random"
    image = np.zeros((80, 100, 3), dtype=np.uint8)
    image[20:60, 30:80] = 180
    answers = []
    for model in (first, second):
        predictor = SamiaPredictor(model)
        predictor.set_image(image)
        answers.append(predictor.predict(Prompt(box=np.array([30.0, 20.0, 79.0, 59.0]))))
    assert answers[0].masks.shape == (3, 80, 100)
    assert np.array_equal(answers[0].low_res_logits, answers[1].low_res_logits)


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path) -> None:
    other = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": build_model("tiny_sam").state_dict()}, other)
    with pytest.raises(CheckpointError, match=r"does not fit a sam2\.1_hiera_tiny checkpoint"):
        build_model("sam2.1_hiera_tiny", other)
    with pytest.raises(CheckpointError, match="--checkpoint sam2.1_hiera_small.pt"):
        build_model("sam2.1_hiera_small")


def test_auto_runs_sam2_on_torch_and_an_exported_backend_runs_its_image_encoder(tmp_path, image) -> None:
    from samia.models.exported import resolve_backend
    from samia.models.interface import runtime_label

    assert resolve_backend("auto", model="tiny_sam2") == "torch"
    assert build_model("tiny_sam2", backend="auto").backend == "torch"
    on_torch = SamiaPredictor(build_model("tiny_sam2"))
    on_torch.set_image(image)
    prompt = Prompt(box=BOX)
    expected = on_torch.predict(prompt, multimask_output=False)
    for backend in ("onnxruntime", "openvino"):
        model = build_model("tiny_sam2", backend=backend, cache=tmp_path)
        assert isinstance(model, Sam2Segmenter) and model.exported_encoder is not None
        assert runtime_label(model) == f"{backend} (fp32) image encoder, torch decoder and memory"
        predictor = SamiaPredictor(model)
        predictor.set_image(image)
        assert np.abs(predictor.image_embedding - on_torch.image_embedding).max() < 1e-4
        answer = predictor.predict(prompt, multimask_output=False)
        decided = np.abs(expected.low_res_logits) > 1e-3
        assert np.abs(answer.low_res_logits - expected.low_res_logits)[decided].max() < 1e-3
    graphs = sorted(tmp_path.rglob("encoder.onnx"))
    assert len(graphs) == 1 and not list(tmp_path.rglob("decoder.onnx"))  # one encoder graph, no decoder
    stamp = graphs[0].stat().st_mtime_ns
    build_model("tiny_sam2", backend="onnxruntime", cache=tmp_path)
    assert graphs[0].stat().st_mtime_ns == stamp  # the cached graph is used again, not re-exported
