"""Multi-process setup under torchrun: one home for joining the process group (training and search use it).

torchrun describes the job in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR/PORT``).
Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) everything runs in one process and no group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

from hat.errors import HatError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (``rank`` 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def local_device(use_cuda: bool) -> torch.device:
    """This process's device: GPU ``LOCAL_RANK`` (torchrun gives each process on a node its own), else the CPU."""
    return torch.device("cuda", env_int("LOCAL_RANK", 0)) if use_cuda else torch.device("cpu")


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment, for work on ``device``.

    gloo on CPU, NCCL on CUDA (the current CUDA device is set to ``device`` first, as NCCL needs). Joining twice
    is harmless: an initialized group is kept.

    Args:
        device: this process's device (:func:`local_device`).

    Returns:
        :class:`DistInfo`; ``DistInfo()`` (rank 0 of 1) without ``WORLD_SIZE`` > 1.
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)
    world = env_int("WORLD_SIZE", 1, minimum=1)
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist
    rank = env_int("RANK", None, minimum=0, why=f"WORLD_SIZE={world} needs RANK (torchrun sets both)")
    if rank >= world:
        raise HatError(f"environment: RANK={rank} is not below WORLD_SIZE={world}")
    info = DistInfo(rank, world, env_int("LOCAL_RANK", 0, minimum=0))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=info.rank, world_size=world)
    return info


def env_int(name: str, default: Optional[int], minimum: int = 0, why: str = "") -> int:
    """The integer environment variable ``name`` (``default`` when unset).

    Raises:
        HatError: unset without a default (``why`` says what needs it), not an integer, or below ``minimum``.
    """
    v = os.environ.get(name)
    if v is None:
        if default is None:
            raise HatError(f"environment: {name} is not set" + (f"; {why}" if why else ""))
        return default
    try:
        n = int(v.strip())
    except ValueError:
        raise HatError(f"environment: {name}={v[:40]!r} is not an integer") from None
    if n < minimum:
        raise HatError(f"environment: {name}={n} is below {minimum}")
    return n
