"""Data-parallel training across processes (``torchrun``) with DistributedDataParallel.

Every helper degrades to the single-process case (rank 0 of a world of 1) when no process
group is initialised, so the trainer has one code path for both.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# Validation and the test evaluation run on rank 0 while the other ranks wait in a collective;
# a full-ranking evaluation with many DDIM steps can outlast NCCL's 10-minute default.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return World(dist.get_rank(), dist.get_world_size(), local)
    return World()


def init_from_env(device: str) -> tuple[World, str]:
    """Join the process group described by torchrun's RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*.

    Returns the world and the device this rank trains on: ``cuda`` becomes ``cuda:LOCAL_RANK``
    (one GPU per process, NCCL); CPU ranks use gloo.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k not in os.environ]
    if missing:
        raise ValueError(
            f"--distributed needs the torchrun environment ({', '.join(missing)} unset): "
            "launch with `torchrun --nproc_per_node=N -m pasrec.cli.main train --distributed ...`"
        )
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    return current_world(), device


def shutdown(collective: bool) -> None:
    """Leave the process group. ``collective`` (the success path): every rank waits for the
    others first, so no rank tears down gloo while a peer still holds its connection (a rank
    leaving early was seen to abort in the C++ teardown). A rank leaving on an error passes
    False: it must not wait for peers that may never arrive."""
    if dist.is_available() and dist.is_initialized():
        if collective:
            dist.barrier()
        dist.destroy_process_group()


def end_rank(code: int) -> NoReturn:
    """End a torchrun rank that has written and flushed everything it reports. Interpreter
    exit runs the C++ destructors of gloo's and the store's threads, and once in a CI run a
    rank that had finished cleanly aborted there (std::terminate, SIGABRT), failing the job
    after its work was done; leaving without those destructors avoids that race."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def shard(order: np.ndarray, world: World) -> np.ndarray:
    """This rank's part of an epoch's permutation, as torch's DistributedSampler cuts it.

    The permutation is padded by wrapping around to a multiple of the world size, so every
    rank runs the same number of steps (a rank with fewer would leave the others waiting in
    the gradient all-reduce). A world of 1 gets ``order`` unchanged.
    """
    per_rank = -(-len(order) // world.size)
    padded = np.resize(order, per_rank * world.size)
    return padded[world.rank :: world.size]


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DDP around ``module`` in a world of several ranks, the module itself otherwise."""
    if world.size == 1:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    # Some model classes own parameters their loss never touches (GRU4Rec's time encoding,
    # for one): DDP must be told, or it waits forever for their gradients. The graph walk
    # this costs per step is small next to the model's own work.
    return nn.parallel.DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=True
    )


def broadcast_flag(flag: bool, world: World, device: torch.device) -> bool:
    """Rank 0's decision (stop training, ...) on every rank."""
    if world.size == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def sum_across(values: dict[str, float], world: World, device: torch.device) -> dict[str, float]:
    """Element-wise sum over ranks (the keys are the same on every rank)."""
    if world.size == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist(), strict=True))
