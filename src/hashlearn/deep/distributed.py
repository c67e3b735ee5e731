"""Data-parallel training with ``torch.distributed`` (DDP), for users who outgrow one device.

Start it with ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` for every process::

    torchrun --nproc-per-node 2 --no-python hashlearn train --dataset fashion-mnist ... \\
        --distributed

Each process trains on its own shard of every epoch's seeded permutation; DDP averages the
gradients, so all ranks hold identical weights after every step. Rank 0 alone writes
checkpoints and shows the progress bar; the early-stopping decision is computed identically on
every rank (same weights, same validation data), so they stop together. The ``gloo`` backend
works on CPUs (and is what the tests use); pass ``backend="nccl"`` on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hashlearn._validation import HashlearnInputError


@dataclass(frozen=True)
class Context:
    """Where this process stands: ``rank`` of ``world_size`` (1 and 0 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(backend: str = "gloo") -> Context:
    """Join the process group described by torchrun's environment variables.

    Already-initialised groups (e.g. set up by the caller) are reused.
    """
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise HashlearnInputError(
            "distributed training needs the RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT variables "
            "that torchrun sets; start it with `torchrun --nproc-per-node N --no-python "
            "hashlearn train ... --distributed`."
        )
    dist.init_process_group(backend=backend)
    return Context(dist.get_rank(), dist.get_world_size())


def current() -> Context:
    """The context of an initialised process group, or the single-process one."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    return Context()


def shard(order: torch.Tensor, ctx: Context) -> torch.Tensor:
    """This rank's share of a permutation: every rank gets the same number of items."""
    if not ctx.enabled:
        return order
    per_rank = len(order) // ctx.world_size
    return order[ctx.rank : per_rank * ctx.world_size : ctx.world_size]


def wrap(module: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """Wrap ``module`` in DistributedDataParallel when running distributed."""
    if not ctx.enabled:
        return module
    return torch.nn.parallel.DistributedDataParallel(module, find_unused_parameters=False)


def mean_over_ranks(value: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Average a scalar tensor over ranks (identity when not distributed)."""
    if not ctx.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / ctx.world_size


def sum_over_ranks(value: torch.Tensor, ctx: Context) -> torch.Tensor:
    if not ctx.enabled:
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        dist.barrier()


def teardown() -> None:
    """Leave the process group (safe to call when none exists)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
