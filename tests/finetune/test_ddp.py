"""Two CPU processes (torchrun, gloo) train the same model as one process with the same effective batch."""

import os
import subprocess
import sys

import pandas as pd
import torch

from samia.finetune import finetune
from samia.models import build_model


def test_two_gloo_processes_match_one_process(make_config, phantom_train, tmp_path):
    single = finetune(make_config(out=str(tmp_path / "single"), images_per_step=2))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "samia.cli.main", "finetune", "--data", str(phantom_train), "--model", "tiny_sam",
        "--method", "decoder", "--out", str(tmp_path / "ddp"), "--epochs", "2", "--lr", "1e-3",
        "--box-jitter", "3", "--negative-margin", "4", "--images-per-step", "1",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ddp_history = pd.read_csv(tmp_path / "ddp" / "history.csv")
    assert ddp_history["epoch"].tolist() == [0, 1, 2]
    for column in ("train_loss", "val_dice"):
        torch.testing.assert_close(ddp_history[column].to_numpy(), single.history[column].to_numpy(),
                                   atol=1e-4, rtol=1e-4, equal_nan=True)
    ddp_weights = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["trainable"]
    single_weights = torch.load(single.out / "last.pt", weights_only=True)["trainable"]
    assert ddp_weights.keys() == single_weights.keys()
    for name, expected in single_weights.items():
        torch.testing.assert_close(ddp_weights[name], expected, atol=2e-5, rtol=1e-4, msg=name)
    base = build_model("tiny_sam").state_dict()
    assert any(not torch.equal(base[name], value) for name, value in single_weights.items())  # training moved them
