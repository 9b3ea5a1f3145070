"""Process-group setup for ``torchrun``: NCCL on GPUs, gloo on CPUs; a no-op when run alone.

``torchrun --nproc_per_node N`` (or a multi-node launch) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them the trainer runs as a single process with rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from model.runtime.devices import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files, logs progress and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(requested_device: str = "auto") -> DistributedContext:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, device)


def teardown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_flag(flag: bool, context: DistributedContext) -> bool:
    """Rank 0's decision (e.g. "stop now"), delivered to every rank."""
    if not context.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item() > 0.5)


def env_rank() -> int:
    """This process's rank as torchrun announced it (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def broadcast_bytes(data: bytes | None, context: DistributedContext) -> bytes:
    """Rank 0's ``data`` on every rank, sent as a uint8 tensor (no pickling involved)."""
    if not context.enabled:
        assert data is not None
        return data
    size = torch.tensor([len(data) if data is not None else 0], dtype=torch.long)
    size = size.to(context.device)
    dist.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=context.device)
    if context.is_main:
        assert data is not None
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, src=0)
    return bytes(buffer.cpu().numpy().tobytes())
