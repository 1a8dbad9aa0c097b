"""The machine's own limit, measured in the same run as the benchmark that divides by it.

``floor = a model's FLOPs (counted by torch's flop counter) / this machine's matmul rate at that
precision (torch, all threads, median of 5)``: no backend can run a graph faster than its matmuls
alone at the rate the machine's own BLAS reaches, so ``time / floor`` says how far a path is from
the CPU's limit whatever CPU runs it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

MATMUL_SIZE = 2048
REPEATS = 5


def matmul_gflops(dtype: torch.dtype, size: int = MATMUL_SIZE, repeats: int = REPEATS) -> float:
    """This machine's ``size`` x ``size`` matmul rate in GFLOP/s at ``dtype`` (median of ``repeats``)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    torch.mm(a, b)  # warm-up: threads started, kernels chosen
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / float(np.median(times)) / 1e9


@dataclass(frozen=True)
class ModelFlops:
    """FLOPs of one model, counted by torch: the image encoder per image, the prompt encoder + mask
    decoder per box prompt (all four output masks, as the exported decoder computes them)."""

    encoder_gflop: float
    decoder_gflop: float


def litemedsam_flops() -> ModelFlops:
    """:class:`ModelFlops` of the bundled LiteMedSAM."""
    from samia.models import build_model

    model = build_model("litemedsam", backend="torch")
    size = model.input_size
    # with autograd on: the counter's module tracker hooks gradients (it fails under no_grad)
    with FlopCounterMode(display=False) as encoder:
        embedding = model.encode(torch.zeros(1, 3, size, size))
    boxes = torch.tensor([[40.0, 50.0, 120.0, 140.0]])
    with FlopCounterMode(display=False) as decoder:
        model.decode_all(embedding.detach(), None, None, boxes, None)
    return ModelFlops(encoder.get_total_flops() / 1e9, decoder.get_total_flops() / 1e9)


@dataclass(frozen=True)
class Machine:
    """This machine's matmul rates (GFLOP/s): fp32 always, bf16 where the CPU has bf16 instructions."""

    fp32: float
    bf16: float | None

    @classmethod
    def measure(cls, with_bf16: bool) -> Machine:
        return cls(matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16) if with_bf16 else None)

    def rate(self, precision: str) -> float:
        """The rate a path at ``precision`` is held to (bf16 paths: the bf16 rate)."""
        rate = self.bf16 if precision == "bf16" else self.fp32
        if rate is None:
            raise ValueError("bf16 was not measured on this machine")
        return rate

    def describe(self) -> str:
        bf16 = f", bf16 {self.bf16:.0f}" if self.bf16 is not None else ""
        return f"matmul {MATMUL_SIZE}^2 on {torch.get_num_threads()} threads: fp32 {self.fp32:.0f}{bf16} GFLOP/s"


def cpu_name() -> str:
    """The CPU's model name, as ``/proc/cpuinfo`` gives it (printed beside every number)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
