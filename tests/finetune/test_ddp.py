"""Two CPU processes (torchrun, gloo) train the same model as one process with the same effective batch."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import torch

from samia.finetune import finetune
from samia.models import build_model


def test_two_gloo_processes_match_one_process(make_config, phantom_train, tmp_path):
    single = finetune(make_config(out=str(tmp_path / "single"), images_per_step=2))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "samia.cli.main",
        "finetune",
        "--data",
        str(phantom_train),
        "--model",
        "tiny_sam",
        "--method",
        "decoder",
        "--out",
        str(tmp_path / "ddp"),
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--box-jitter",
        "3",
        "--negative-margin",
        "4",
        "--images-per-step",
        "1",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ddp_history = pd.read_csv(tmp_path / "ddp" / "history.csv")
    assert ddp_history["epoch"].tolist() == [0, 1, 2]
    for column in ("train_loss", "val_dice"):
        np.testing.assert_allclose(ddp_history[column], single.history[column], atol=1e-4, rtol=1e-4)
    # the same function: Adam moves parameters whose gradient is exactly zero in theory (e.g. the
    # attention key biases, which softmax ignores) by the sign of rounding noise, so compare outputs
    models = {name: build_model("tiny_sam") for name in ("single", "ddp")}
    for name, model in models.items():
        trained = torch.load(tmp_path / name / "last.pt", weights_only=True)["trainable"]
        model.load_state_dict(trained, strict=False)
    torch.manual_seed(0)
    embedding = torch.randn(1, 32, 8, 8)
    points, labels, boxes = torch.rand(3, 2, 2) * 64, torch.tensor([[1, 0], [1, 1], [1, 0]]), torch.rand(3, 4) * 32
    boxes[:, 2:] += 32
    with torch.no_grad():
        single_out, ddp_out = (m.decode_all(embedding, points, labels, boxes) for m in models.values())
        base_out = build_model("tiny_sam").decode_all(embedding, points, labels, boxes)
    for expected, actual, base in zip(single_out, ddp_out, base_out):
        torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
        assert (expected - base).abs().max() > 1e-2  # and training did change the function
