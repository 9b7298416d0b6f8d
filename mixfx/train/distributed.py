"""Where a training process runs: CPU, one GPU, or many GPUs/nodes under ``torchrun`` (PyTorch DDP).

:func:`setup_runtime` reads ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
picks the device and starts the process group (NCCL on CUDA, gloo on CPU); :func:`runtime` does
that around a block and tears the group down after it. :func:`all_reduce_mean` averages a scalar
over the ranks and :func:`wrap_ddp` wraps a model for data-parallel gradients.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from mixfx.models.loading import resolve_device

__all__ = ["Runtime", "all_reduce_mean", "runtime", "setup_runtime", "teardown_runtime", "wrap_ddp"]


@dataclass
class Runtime:
    """Where this process trains: rank, world size, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def setup_runtime(device: str | None = None) -> Runtime:
    """Read ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick the device.

    The device goes through :func:`mixfx.models.loading.resolve_device` (the project's one resolver);
    a CUDA device without an index becomes this rank's GPU, ``cuda:LOCAL_RANK``.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or ``None`` (CUDA when available).

    Raises:
        MixfxError: an unparsable device, or CUDA asked for where there is none.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local) if dev.index is None else dev
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank, world, local, dev)


def teardown_runtime(rt: Runtime) -> None:
    """End the process group :func:`setup_runtime` started (nothing on one process)."""
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def runtime(device: str | None = None) -> Iterator[Runtime]:
    """:func:`setup_runtime` for the block, :func:`teardown_runtime` after it (also on errors)."""
    rt = setup_runtime(device)
    try:
        yield rt
    finally:
        teardown_runtime(rt)


def all_reduce_mean(value: float, rt: Runtime) -> float:
    """Mean of a scalar over ranks (identity on one process)."""
    if not rt.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=rt.device if rt.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / rt.world


def wrap_ddp(model: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` on several processes, else itself.

    DDP averages the gradients over the ranks in ``backward``, so one optimizer step sees the
    mean gradient of every rank's batch.
    """
    if not rt.distributed:
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None)
