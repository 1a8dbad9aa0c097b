import numpy as np
import pytest
import torch

from samia.embeddings import EmbeddingCache, embedding_key
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam")


def _image(seed: int = 0, shape=(48, 80)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (*shape, 3), dtype=np.uint8)
    image[10:30, 20:50] += 150
    return image


PROMPTS = [
    Prompt(box=np.array([20, 10, 49, 29])),
    Prompt(points=np.array([[30, 20]]), labels=np.array([1])),
    Prompt(points=np.array([[30, 20], [5, 5]]), labels=np.array([1, 0])),
    Prompt(points=np.array([[35, 15]]), labels=np.array([1]), box=np.array([20, 10, 49, 29])),
    Prompt(box=np.array([0, 0, 79, 47])),
    Prompt(),
]


def test_batch_equals_one_by_one_and_keeps_order(model):
    predictor = SamiaPredictor(model)
    predictor.set_image(_image())
    batched = predictor.predict_batch(PROMPTS, multimask_output=True)
    for prompt, together in zip(PROMPTS, batched):
        alone = predictor.predict(prompt, multimask_output=True)
        np.testing.assert_allclose(together.low_res_logits, alone.low_res_logits, atol=1e-4)
        np.testing.assert_allclose(together.iou_predictions, alone.iou_predictions, atol=1e-5)
    assert predictor.encoder_calls == 1


def test_outputs_are_on_the_original_grid(model):
    predictor = SamiaPredictor(model)
    predictor.set_image(_image(shape=(48, 80)))
    multi = predictor.predict(PROMPTS[0], multimask_output=True)
    single = predictor.predict(PROMPTS[0], multimask_output=False)
    assert multi.masks.shape == (3, 48, 80) and multi.masks.dtype == bool
    assert single.masks.shape == (1, 48, 80)
    assert multi.low_res_logits.shape == (3, model.low_res_size, model.low_res_size)
    # the mask is the thresholded, upsampled logits: a mask pixel has positive logits
    logits = predictor.geometry.logits_to_original(single.low_res_logits[None])[0, 0]
    np.testing.assert_array_equal(single.masks[0], logits > 0)


def test_mask_input_is_used(model):
    predictor = SamiaPredictor(model)
    predictor.set_image(_image())
    first = predictor.predict(PROMPTS[1], multimask_output=False)
    refined = predictor.predict(
        Prompt(points=PROMPTS[1].points, labels=PROMPTS[1].labels, mask_input=first.low_res_logits[0]), False
    )
    assert not np.allclose(first.low_res_logits, refined.low_res_logits)
    with pytest.raises(ValueError, match="mask_input"):
        predictor.predict(Prompt(box=PROMPTS[0].box, mask_input=np.zeros((7, 7), np.float32)))


def test_memory_cache_reuses_embeddings(model):
    cache = EmbeddingCache(max_items=2)
    predictor = SamiaPredictor(model, cache)
    first, second, third = _image(0), _image(1), _image(2)
    for image in (first, second, first, second):
        predictor.set_image(image)
    assert predictor.encoder_calls == 2 and cache.hits == 2
    predictor.set_image(third)  # evicts `first` (least recently used)
    predictor.set_image(first)
    assert predictor.encoder_calls == 4


def test_disk_cache_survives_a_new_process_state(model, tmp_path):
    image = _image(3)
    writer = SamiaPredictor(model, EmbeddingCache(directory=tmp_path))
    writer.set_image(image)
    expected = writer.predict(PROMPTS[0]).low_res_logits
    reader = SamiaPredictor(model, EmbeddingCache(directory=tmp_path))
    reader.set_image(image)
    assert reader.encoder_calls == 0
    np.testing.assert_allclose(reader.predict(PROMPTS[0]).low_res_logits, expected, atol=1e-6)
    # an entry whose stored key differs (a foreign or stale file) is refused and recomputed
    key = embedding_key(model, image)
    np.savez(tmp_path / f"{key}.npz", key=np.array("another"), embedding=np.zeros(1, np.float32))
    stale = SamiaPredictor(model, EmbeddingCache(directory=tmp_path))
    stale.set_image(image)
    assert stale.encoder_calls == 1


def test_key_depends_on_pixels_and_weights(model):
    image = _image()
    other = image.copy()
    other[0, 0, 0] ^= 1
    assert embedding_key(model, image) != embedding_key(model, other)
    litemedsam_like = build_model("tiny_litemedsam")
    assert embedding_key(model, image) != embedding_key(litemedsam_like, image)
    letterboxed = build_model("tiny_litemedsam", input_pipeline="sam")
    assert embedding_key(letterboxed, image) != embedding_key(litemedsam_like, image)


def test_same_model_name_with_other_weights_gets_its_own_embedding(model):
    """A fine-tuned copy of a model (same name, other weights) must not reuse the base's embedding."""
    image = _image()
    tuned = build_model("tiny_sam")
    with torch.no_grad():
        for parameter in tuned.image_encoder.parameters():
            parameter.add_(0.05)
    tuned.weights_sha256 = "f" * 64
    assert embedding_key(model, image) != embedding_key(tuned, image)
    cache = EmbeddingCache(max_items=4)
    base_predictor, tuned_predictor = SamiaPredictor(model, cache), SamiaPredictor(tuned, cache)
    base_predictor.set_image(image)
    tuned_predictor.set_image(image)
    assert tuned_predictor.encoder_calls == 1
    assert not np.allclose(base_predictor.image_embedding, tuned_predictor.image_embedding)


def test_misuse_is_reported(model):
    predictor = SamiaPredictor(model)
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(PROMPTS[0])
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(np.zeros((10, 10, 3), np.float32))


def test_both_outputs_from_one_pass_equal_segment_anythings_decoder(model):
    predictor = SamiaPredictor(model)
    predictor.set_image(_image())
    both = predictor.predict_batch_both(PROMPTS[:2])
    for prompt, (multi, single) in zip(PROMPTS[:2], both):
        np.testing.assert_allclose(multi.low_res_logits, predictor.predict(prompt, True).low_res_logits, atol=1e-5)
        np.testing.assert_allclose(single.low_res_logits, predictor.predict(prompt, False).low_res_logits, atol=1e-5)
    # the upstream MaskDecoder.forward selects the same tokens
    box = torch.as_tensor(predictor.geometry.boxes_to_input(PROMPTS[0].box), dtype=torch.float32)[None]
    sparse, dense = model.prompt_encoder(points=None, boxes=box, masks=None)
    with torch.no_grad():
        for multimask, ours in ((True, both[0][0]), (False, both[0][1])):
            logits, iou = model.mask_decoder(
                torch.from_numpy(predictor.image_embedding),
                model.prompt_encoder.get_dense_pe(),
                sparse,
                dense,
                multimask,
            )
            np.testing.assert_allclose(ours.low_res_logits, logits[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(ours.iou_predictions, iou[0].numpy(), atol=1e-5)


def test_the_embedding_cache_stays_within_its_byte_budget() -> None:
    from samia.embeddings import EmbeddingCache

    one = np.zeros((1, 4, 16, 16), np.float32)  # 4 KiB
    cache = EmbeddingCache(max_items=100, max_bytes=3 * one.nbytes)
    for key in "abcd":
        cache.put(key, one + ord(key))
    assert len(cache) == 3 and cache.bytes == 3 * one.nbytes and cache.get("a") is None
    assert cache.get("b") is not None  # b is now the most recent: c goes next
    cache.put("e", one)
    assert cache.get("c") is None and cache.get("b") is not None and cache.bytes == 3 * one.nbytes
    cache.put("e", np.zeros((1, 4, 8, 8), np.float32))  # replacing an entry counts its new size
    assert cache.bytes == 2 * one.nbytes + one.nbytes // 4
