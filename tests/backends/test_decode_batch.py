"""The decoder's batch size is chosen by measuring the model on this machine, kept, and never changes
an answer: every backend decodes a prompt the same alone and in a batch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samia.models import build_model
from samia.models.decode_batch import CANDIDATES, FILE_NAME, machine_key, measured_decode_batch
from samia.models.exported import BACKENDS
from samia.predictor import SamiaPredictor
from samia.types import Prompt


@pytest.fixture(autouse=True)
def _export_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SAMIA_CACHE", str(tmp_path_factory.getbasetemp() / "samia-cache"))


def _image() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, (48, 56, 3), dtype=np.uint8)


@pytest.mark.parametrize("backend", [b for b in BACKENDS])
def test_a_prompt_decodes_the_same_alone_and_in_a_batch(backend) -> None:
    model = build_model("tiny_litemedsam", backend=backend)
    boxes = [np.array([4.0 + i, 5.0, 30.0 + i, 40.0 - i]) for i in range(9)]
    batched = SamiaPredictor(model, max_batch=32)
    batched._decode_batch = 9  # every prompt in one decoder call
    alone = SamiaPredictor(model, max_batch=1)
    for predictor in (batched, alone):
        predictor.set_image(_image())
    together = batched.predict_batch([Prompt(box=b) for b in boxes])
    for box, answer in zip(boxes, together):
        single = alone.predict(Prompt(box=box))
        np.testing.assert_allclose(answer.low_res_logits, single.low_res_logits, atol=1e-5)
        np.testing.assert_array_equal(answer.masks, single.masks)


def test_the_measurement_is_kept_per_model_and_machine_and_bounded_by_max_batch(tmp_path) -> None:
    model = build_model("tiny_litemedsam", backend="onnxruntime")
    calls = []
    decode = model.decode_arrays

    def counting(embedding, *prompts):
        calls.append(len(prompts[2]))
        return decode(embedding, *prompts)

    model.decode_arrays = counting  # the real decoder runs; its calls are counted
    best = measured_decode_batch(model, 32, tmp_path)
    assert best in CANDIDATES and calls[:2] == [1, 1]  # each size: one untimed call, one timed
    table = json.loads((tmp_path / FILE_NAME).read_text())
    measured = {int(size): seconds for size, seconds in table[machine_key(model)].items()}
    assert best == min(measured, key=measured.get) and all(seconds > 0 for seconds in measured.values())
    made = len(calls)
    assert measured_decode_batch(model, 32, tmp_path) == best and len(calls) == made  # read, not measured again
    assert measured_decode_batch(model, 1, tmp_path) == 1  # never above max_batch
    (tmp_path / FILE_NAME).write_text("{not json")
    assert measured_decode_batch(model, 32, tmp_path) in CANDIDATES and len(calls) > made  # unreadable: measured again


def test_the_predictor_decodes_at_most_max_batch_per_call() -> None:
    model = build_model("tiny_litemedsam")
    calls = []
    decode = model.decode_arrays

    def counting(embedding, *prompts):
        calls.append(len(prompts[2]))
        return decode(embedding, *prompts)

    predictor = SamiaPredictor(model, max_batch=8)
    predictor.set_image(_image())
    batch = predictor.decode_batch  # measured (or read) before counting
    model.decode_arrays = counting
    predictor.predict_batch([Prompt(box=np.array([4.0, 5.0, 30.0, 40.0]))] * 20)
    assert sum(calls) == 20 and max(calls) <= 8 and max(calls) == batch
