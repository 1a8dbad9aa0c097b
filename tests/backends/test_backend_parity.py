"""ONNX Runtime and OpenVINO run the same model as PyTorch: exported graphs of the tiny random models,
every prompt structure, compared with torch's own outputs (fp32: logits within 1e-3, masks IoU >= 0.999);
the export cache (keyed by the weights, checked against its manifest) and the errors of bad choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samia.errors import ConfigurationError
from samia.models import build_model
from samia.models.export import export_graphs, model_export_key, on_backend
from samia.models.exported import BACKENDS, ExportedModel, check_backend, cpu_has_bf16, export_key
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
@pytest.mark.parametrize("name", ["tiny_sam", "tiny_medsam", "tiny_litemedsam"])
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
    # bf16 keeps 8 bits of mantissa: the embedding within 2 % of its largest value, and the random
    # models' logits sit near 0, so a few threshold pixels flip (measured: mask IoU >= 0.989)
    embedding_tolerance = 1e-3 if precision == "fp32" else 2e-2 * np.abs(reference.image_embedding).max()
    assert np.abs(reference.image_embedding - other.image_embedding).max() <= embedding_tolerance
    tolerance, least_iou = (1e-3, 0.999) if precision == "fp32" else (5e-2, 0.98)
    for ours, theirs in zip(other.predict_batch_all_outputs(prompts), reference.predict_batch_all_outputs(prompts)):
        assert np.abs(ours.low_res_logits - theirs.low_res_logits).max() <= tolerance
        assert np.abs(ours.iou_predictions - theirs.iou_predictions).max() <= tolerance
        union = np.count_nonzero(ours.masks | theirs.masks)
        assert union == 0 or np.count_nonzero(ours.masks & theirs.masks) / union >= least_iou


def test_the_cache_is_keyed_by_the_weights_file(tmp_path) -> None:
    model = build_model("tiny_sam")
    checkpoint = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    cache = tmp_path / "cache"
    first = build_model("tiny_sam", checkpoint, backend="onnxruntime", cache=cache)
    assert isinstance(first, ExportedModel) and first.folder.name == export_key("tiny_sam", first.weights_sha256)
    again = build_model("tiny_sam", checkpoint, backend="openvino", cache=cache)
    assert again.folder == first.folder  # found by the file's SHA-256, not exported twice
    with torch.no_grad():
        model.mask_decoder.iou_prediction_head.layers[-1].bias.add_(1.0)
    torch.save(model.state_dict(), checkpoint)
    changed = build_model("tiny_sam", checkpoint, backend="onnxruntime", cache=cache)
    assert changed.folder != first.folder and sorted(p.name for p in cache.iterdir()) == sorted(
        [first.folder.name, changed.folder.name]
    )
    image = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    outputs = []
    for exported in (first, changed):
        predictor = SamiaPredictor(exported)
        predictor.set_image(image)
        outputs.append(predictor.predict(Prompt(box=np.array([5.0, 5.0, 30.0, 30.0]))).iou_predictions)
    np.testing.assert_allclose(outputs[1] - outputs[0], 1.0, atol=1e-4)


def test_random_weights_are_keyed_by_their_parameters(tmp_path) -> None:
    model = build_model("tiny_sam")
    key = model_export_key(model)
    with torch.no_grad():
        model.mask_decoder.iou_prediction_head.layers[0].weight.add_(0.1)
    assert model_export_key(model) != key


@pytest.mark.parametrize("damage", ["changed", "truncated", "manifest"])
def test_a_damaged_cache_entry_is_exported_again(tmp_path, damage) -> None:
    model = build_model("tiny_sam")
    folder = export_graphs(model, tmp_path)
    decoder = folder / "decoder.onnx"
    original = decoder.read_bytes()
    if damage == "changed":  # same size, one byte flipped: still loadable, not trusted
        decoder.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    elif damage == "truncated":
        decoder.write_bytes(original[: len(original) // 2])
    else:
        (folder / "manifest.json").write_text("{not json")
    rebuilt = on_backend(model, "onnxruntime", "fp32", tmp_path)
    assert rebuilt.folder == folder and decoder.read_bytes() == original
    low = model.low_res_size
    logits, _ = rebuilt.decode_arrays(
        np.zeros(model.embedding_shape, np.float32), None, None, np.array([[1.0, 1.0, 30.0, 30.0]], np.float32), None
    )
    assert logits.shape == (1, 4, low, low)


def test_a_backend_that_is_not_installed_says_how_to_install_it(cli, phantom_2d, tmp_path, monkeypatch) -> None:
    import samia.models.exported

    monkeypatch.setitem(samia.models.exported._PACKAGES, "openvino", "openvino_not_installed_here")
    image = sorted((phantom_2d / "images").iterdir())[0]
    out = tmp_path / "mask.png"
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--box", 20, 20, 60, 60, "--backend", "openvino", "--out", out
    )
    assert code == 2 and not out.exists()
    assert "the openvino backend needs the Python package 'openvino_not_installed_here'" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_bad_backend_choices_say_what_works() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown backend 'tensorrt'; choose one of torch, onnxruntime, openvino"
    ):
        check_backend("tensorrt", "fp32")
    with pytest.raises(ConfigurationError, match="the onnxruntime backend runs fp32, not 'int8'"):
        check_backend("onnxruntime", "int8")
    with pytest.raises(ConfigurationError, match="the openvino backend runs fp32, bf16, not 'fp16'"):
        check_backend("openvino", "fp16")
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
    from samia.evaluation import EvaluationConfig, evaluate

    rows = {
        backend: evaluate(
            EvaluationConfig.from_dict(
                dict(
                    data=str(phantom_2d),
                    out=str(tmp_path / backend),
                    model="tiny_sam",
                    strategies=["box"],
                    backend=backend,
                )
            )
        ).results
        for backend in ("torch", "onnxruntime")
    }
    assert np.allclose(rows["torch"]["dice"], rows["onnxruntime"]["dice"], atol=1e-3)


def test_an_edited_manifest_is_never_trusted(tmp_path) -> None:
    """A valid manifest with another mask threshold would change every mask: its seal catches it."""
    import json

    model = build_model("tiny_sam")
    folder = export_graphs(model, tmp_path)
    record = json.loads((folder / "manifest.json").read_text())
    record["mask_threshold"] = 5.0
    (folder / "manifest.json").write_text(json.dumps(record, indent=1))
    rebuilt = on_backend(model, "onnxruntime", "fp32", tmp_path)
    assert rebuilt.mask_threshold == float(model.mask_threshold)
    assert json.loads((folder / "manifest.json").read_text())["mask_threshold"] == float(model.mask_threshold)


def test_a_graph_changed_after_its_first_use_in_the_process_is_rebuilt(tmp_path) -> None:
    model = build_model("tiny_sam")
    first = on_backend(model, "onnxruntime", "fp32", tmp_path)
    encoder = first.folder / "encoder.onnx"
    original = encoder.read_bytes()
    with encoder.open("r+b") as handle:  # in place: same inode and size, a new mtime
        handle.seek(len(original) // 2)
        handle.write(bytes([original[len(original) // 2] ^ 0xFF]))
    rebuilt = on_backend(model, "onnxruntime", "fp32", tmp_path)
    assert encoder.read_bytes() == original and rebuilt.folder == first.folder


@pytest.mark.skipif(__import__("importlib").util.find_spec("openvino") is None, reason="OpenVINO is not installed")
def test_damaged_or_foreign_openvino_blobs_are_recompiled(tmp_path) -> None:
    import json

    model = build_model("tiny_sam")
    folder = export_graphs(model, tmp_path)
    ExportedModel(folder, "openvino", "fp32")
    records = sorted(folder.glob("openvino-*/openvino_cache_*.json"))
    assert [r.stem for r in records] == ["openvino_cache_decoder", "openvino_cache_encoder"]
    blobs = [records[1].with_suffix("") / name for name in json.loads(records[1].read_text())]
    assert blobs
    blob = blobs[0]
    original = blob.read_bytes()
    blob.write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    (records[0].with_suffix("") / "stray.blob").write_bytes(b"not from this compile")
    reloaded = ExportedModel(folder, "openvino", "fp32")
    assert not (records[0].with_suffix("") / "stray.blob").exists()
    for record in records:
        listed = json.loads(record.read_text())
        assert all((record.with_suffix("") / name).is_file() for name in listed)
    image = np.random.default_rng(1).integers(0, 255, (model.input_size, model.input_size, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model.embed(image)
    np.testing.assert_allclose(reloaded.embed(image), expected, atol=1e-3)
