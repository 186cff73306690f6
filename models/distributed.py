"""Device choice and torchrun/DDP set-up (gloo on CPU, NCCL on CUDA)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_distributed", "resolve_device", "shutdown_distributed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process trains and its place among torchrun's processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: an unknown name, or CUDA asked for where none is available.
    """
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}: use cpu, cuda or cuda:N")


def init_distributed(device_name: str) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; else a single process.

    Raises:
        ValueError: a bad device name (see :func:`resolve_device`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return DistContext(device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.info("rank %d/%d on %s (%s)", rank, world, device, backend)
    return DistContext(device, rank, world)


def shutdown_distributed() -> None:
    """Leave the process group (no-op when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
