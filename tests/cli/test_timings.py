"""``samia segment --timings``: every stage of the run named with its seconds, which add up to the
total from the process's start; the predictor's encoder and decoder counters."""

from __future__ import annotations

import re

import numpy as np

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Prompt

STAGE = re.compile(r"(\w+) (\d+\.\d\d) s")


def _stages(stderr: str) -> dict[str, float]:
    line = next(line for line in stderr.splitlines() if line.startswith("timings: "))
    return {name: float(seconds) for name, seconds in STAGE.findall(line)}


def test_a_2d_case_prints_each_stage_and_a_total(cli, phantom_2d, tmp_path) -> None:
    image = sorted((phantom_2d / "images").iterdir())[0]
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--box", 20, 20, 60, 60, "--timings", "--out", tmp_path / "m.png"
    )
    assert code == 0, stderr
    stages = _stages(stderr)
    assert list(stages) == ["start", "read", "model", "encode", "decode", "prepare", "write", "other", "total"]
    assert all(seconds >= 0 for seconds in stages.values())
    parts = sum(v for k, v in stages.items() if k != "total")
    assert abs(parts - stages["total"]) <= 0.005 * len(stages)  # the stages add up to the total (rounding)
    code, _, stderr = cli("segment", image, "--model", "tiny_sam", "--box", 20, 20, 60, 60, "--out", tmp_path / "n.png")
    assert code == 0 and "timings:" not in stderr


def test_a_volume_prints_its_propagation_split_into_encode_and_decode(cli, phantom_3d, tmp_path) -> None:
    image = sorted((phantom_3d / "imagesTr").iterdir())[0]
    code, _, stderr = cli(
        "segment", image, "--model", "tiny_sam", "--box3d", 10, 10, 1, 40, 40, 4, "--timings",
        "--out", tmp_path / "v.nii.gz",
    )  # fmt: skip
    assert code == 0, stderr
    assert {"read", "model", "propagate", "encode", "decode", "write", "total"} <= set(_stages(stderr))


def test_the_predictor_counts_encoder_and_decoder_time_and_a_cache_hit_costs_none() -> None:
    predictor = SamiaPredictor(build_model("tiny_sam"))
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    predictor.set_image(image)
    encoded = predictor.encode_seconds
    assert encoded > 0 and predictor.decode_seconds == 0
    predictor.set_image(image)  # the embedding comes from the cache
    assert predictor.encode_seconds == encoded and predictor.encoder_calls == 1
    predictor.predict_batch([Prompt(box=np.array([5.0, 5.0, 30.0, 30.0]))], False)
    assert predictor.decode_seconds > 0
