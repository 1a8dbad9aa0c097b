"""Data-parallel training with ``torch.distributed``: one process per GPU (or CPU) under ``torchrun``.

``torchrun --nproc_per_node=N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them the
run is a single process and nothing here talks to other processes. Backend: NCCL on CUDA, gloo
otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the run.

    Attributes:
        rank: global rank (0 = the process that writes files and shows progress).
        world_size: number of processes.
        device: this process's torch device (``cuda:LOCAL_RANK`` under ``torchrun`` on GPUs).
        owns_group: this context initialised the process group and destroys it in :meth:`stop`.
    """

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @classmethod
    def start(cls, device: str) -> DistributedContext:
        """Join the process group ``torchrun`` describes in the environment (if any)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls(0, 1, torch.device(device))
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), torch.device(device), owns)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over all processes (``tensor`` itself when alone)."""
        if self.distributed:
            tensor = tensor.to(self.device)
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu()

    def stop(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
