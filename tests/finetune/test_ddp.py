"""Two CPU processes (torchrun, gloo) train the same model as one process with the same effective batch."""

import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from samia.finetuning import finetune
from samia.models import build_model


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


@pytest.mark.parametrize("launch", ["one_node", "two_nodes"])
def test_two_gloo_processes_match_one_process(launch, make_config, phantom_train, tmp_path):
    """``one_node``: ``torchrun --standalone --nproc_per_node=2``; ``two_nodes``: the fine-tuning guide's
    multi-node command, two torchrun launchers of one process each meeting at a c10d rendezvous
    on 127.0.0.1 (each launcher stands for a machine)."""
    single = finetune(make_config(out=str(tmp_path / "single"), images_per_step=2))
    if launch == "one_node":
        launchers = [["--standalone", "--nproc_per_node=2"]]
    else:
        endpoint = f"127.0.0.1:{_free_port()}"
        rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}"]
        launchers = [[*rendezvous, "--rdzv_id=samia-test", f"--node_rank={rank}"] for rank in (0, 1)]
    finetune_command = [
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
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", *launcher, *finetune_command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        for launcher in launchers
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-4000:]

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
