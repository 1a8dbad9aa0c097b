"""ONNX Runtime and OpenVINO run the same model as PyTorch: exported graphs of the tiny random models,
every prompt structure, compared with torch's own outputs (fp32: logits within 1e-3, masks IoU >= 0.999)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samia.errors import ConfigurationError
from samia.models import build_model
from samia.models.backends import BACKENDS, check_backend, cpu_has_bf16, on_backend
from samia.models.export import export_graphs, export_key
from samia.predictor import SamiaPredictor
from samia.types import Prompt

EXPORTED = [(b, p) for b, precisions in BACKENDS.items() if b != "torch" for p in precisions]


@pytest.fixture(autouse=True)
def _export_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SAMIA_CACHE", str(tmp_path_factory.getbasetemp() / "samia-cache"))


def _prompts(low_res_size: int) -> list[Prompt]:
    box = np.array([12.0, 9.0, 40.0, 35.0])
    points, labels = np.array([[20.0, 18.0], [33.0, 30.0]]), np.array([1, 0])
    mask = np.random.default_rng(0).normal(0, 3, (low_res_size, low_res_size)).astype(np.float32)
    return [
        Prompt(box=box),
        Prompt(box=box + 3),
        Prompt(points=points, labels=labels),
        Prompt(points=points[:1], labels=labels[:1], box=box),
        Prompt(box=box, mask_input=mask),
        Prompt(),
    ]


@pytest.mark.parametrize("backend, precision", EXPORTED)
@pytest.mark.parametrize("name", ["tiny_sam", "tiny_litemedsam"])
def test_every_prompt_structure_matches_torch(name, backend, precision) -> None:
    if precision == "bf16" and not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions (avx512_bf16 / AMX)")
    image = np.random.default_rng(1).integers(0, 255, (50, 60, 3), dtype=np.uint8)
    reference, other = (
        SamiaPredictor(build_model(name, backend=b, precision=p)) for b, p in (("torch", "fp32"), (backend, precision))
    )
    prompts = _prompts(reference.model.low_res_size)
    reference.set_image(image)
    other.set_image(image)
    assert torch.allclose(reference.image_embedding, other.image_embedding, atol=1e-3)
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    for ours, theirs in zip(other.predict_batch_all_outputs(prompts), reference.predict_batch_all_outputs(prompts)):
        assert np.abs(ours.low_res_logits - theirs.low_res_logits).max() <= tolerance
        assert np.abs(ours.iou_predictions - theirs.iou_predictions).max() <= tolerance
        union = np.count_nonzero(ours.masks | theirs.masks)
        assert union == 0 or np.count_nonzero(ours.masks & theirs.masks) / union >= 0.999


def test_changed_weights_are_exported_again(tmp_path) -> None:
    model = build_model("tiny_sam")
    first = export_graphs(model, tmp_path)
    assert export_graphs(model, tmp_path) == first  # cached
    with torch.no_grad():
        model.mask_decoder.iou_prediction_head.layers[0].weight.add_(0.1)
    assert export_key(model) not in str(first.decoder) and export_graphs(model, tmp_path) != first


def test_a_corrupt_cached_graph_is_exported_again(tmp_path) -> None:
    model = build_model("tiny_sam")
    graphs = export_graphs(model, tmp_path)
    graphs.decoder.write_bytes(b"not an onnx file")
    rebuilt = on_backend(model, "onnxruntime", "fp32", tmp_path)
    assert graphs.decoder.stat().st_size > 1000
    embedding = torch.zeros(SamiaPredictor(model).embedding_shape)
    low = model.low_res_size
    logits, _ = rebuilt.decode_all(embedding, boxes=torch.tensor([[1.0, 1.0, 30.0, 30.0]]))
    assert logits.shape == (1, 4, low, low)


def test_bad_backend_choices_say_what_works() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown backend 'tensorrt'; choose one of torch, onnxruntime, openvino"
    ):
        check_backend("tensorrt", "fp32")
    with pytest.raises(ConfigurationError, match="the onnxruntime backend runs fp32, not 'int8'"):
        check_backend("onnxruntime", "int8")
    with pytest.raises(ConfigurationError, match="runs on the CPU"):
        build_model("tiny_sam", device="cuda", backend="onnxruntime")
    if not cpu_has_bf16():
        with pytest.raises(ConfigurationError, match="bf16 needs a CPU with bf16 instructions"):
            check_backend("openvino", "bf16")


def test_segment_and_evaluate_take_a_backend(cli, phantom_2d, tmp_path) -> None:
    image = sorted((phantom_2d / "images").iterdir())[0]
    masks = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        out = tmp_path / f"{backend}.png"
        code, _, stderr = cli(
            "segment", image, "--model", "tiny_sam", "--box", 20, 20, 60, 60, "--backend", backend, "--out", out
        )
        assert code == 0, stderr
        from PIL import Image

        masks[backend] = np.asarray(Image.open(out)) > 0
    assert np.array_equal(masks["torch"], masks["onnxruntime"]) and np.array_equal(masks["torch"], masks["openvino"])
    code, _, stderr = cli(
        "segment",
        image,
        "--model",
        "tiny_sam",
        "--box",
        20,
        20,
        60,
        60,
        "--backend",
        "tensorrt",
        "--out",
        tmp_path / "x.png",
    )
    assert code == 2 and "unknown backend 'tensorrt'" in stderr and not (tmp_path / "x.png").exists()
    from samia.evaluate import EvaluationConfig, evaluate

    rows = {
        backend: evaluate(
            EvaluationConfig(
                data=str(phantom_2d), out=str(tmp_path / backend), model="tiny_sam", strategies=["box"], backend=backend
            )
        ).results
        for backend in ("torch", "onnxruntime")
    }
    assert np.allclose(rows["torch"]["dice"], rows["onnxruntime"]["dice"], atol=1e-3)
