"""Devices and data-parallel training with ``torch.distributed`` (DDP).

:func:`resolve_device` turns ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` into a torch device
this machine has (or a clear error). For users who outgrow one device, data-parallel training:

Start it with ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` for every process::

    torchrun --nproc-per-node 2 --no-python hashlearn train --dataset fashion-mnist ... \\
        --distributed

Each process trains on its own shard of every epoch's seeded permutation; DDP averages the
gradients, so all ranks hold identical weights after every step. Rank 0 alone writes
checkpoints and shows the progress bar; the early-stopping decision is computed identically on
every rank (same weights, same validation data), so they stop together. The ``gloo`` backend
works on CPUs (and is what the tests use); on GPUs ``hashlearn train --device cuda
--distributed`` uses ``nccl`` (:func:`backend_for`) and each process takes the GPU numbered by
torchrun's ``LOCAL_RANK`` (:func:`process_device`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hashlearn._validation import HashlearnInputError
from hashlearn.deep.config import check_device


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


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``; 0 when unset)."""
    value = os.environ.get("LOCAL_RANK", "0")
    try:
        return int(value)
    except ValueError:
        raise HashlearnInputError(f"LOCAL_RANK must be an integer, got {value!r}.") from None


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or a clear error.

    ``auto`` is ``cuda`` when ``torch.cuda.is_available()`` and the CPU otherwise; ``cuda``
    means the current CUDA device (see :func:`process_device` for one GPU per process under
    torchrun).
    """
    name = check_device(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = (
            ""
            if torch.backends.cuda.is_built()
            else f" (torch {torch.__version__} is a CPU-only build)"
        )
        raise HashlearnInputError(
            f"device {name!r} was requested but CUDA is not available{why}; "
            "use `device='cpu'` or `device='auto'`."
        )
    resolved = torch.device(name)
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise HashlearnInputError(
            f"device {name!r} was requested but only {count} CUDA device(s) are visible "
            f"(cuda:0 to cuda:{count - 1}); pick one of them or use `device='cpu'`."
        )
    return resolved


def backend_for(device: torch.device | str) -> str:
    """``nccl`` for CUDA devices, ``gloo`` for the CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def process_device(device: torch.device, ctx: Context) -> torch.device:
    """The device this process trains on: with several processes, plain ``cuda`` becomes
    ``cuda:LOCAL_RANK`` (one GPU per process); an explicit ``cuda:N`` or the CPU is kept."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank() if ctx.enabled else torch.cuda.current_device())
    return device


def setup(backend: str = "gloo") -> Context:
    """Join the process group described by torchrun's environment variables.

    Already-initialised groups (e.g. set up by the caller) are reused. With ``nccl`` the
    process first selects GPU ``LOCAL_RANK`` (NCCL needs one distinct GPU per process).
    """
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size())
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise HashlearnInputError(
            "distributed training needs the RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT variables "
            "that torchrun sets; start it with `torchrun --nproc-per-node N --no-python "
            "hashlearn train ... --distributed`."
        )
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
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


def wrap(
    module: torch.nn.Module, ctx: Context, device: torch.device | None = None
) -> torch.nn.Module:
    """Wrap ``module`` (already on ``device``) in DistributedDataParallel when distributed."""
    if not ctx.enabled:
        return module
    if device is not None and device.type == "cuda":
        return torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index], output_device=device.index,
            find_unused_parameters=False,
        )  # fmt: skip
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


def gather_rows(indices: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(indices, *rows)`` of every rank's batch, concatenated in rank order (unchanged
    outside a process group); no gradient.

    Stateful losses write their batch's rows into per-item buffers (DPSH/DSDH's memory of
    outputs, ADSH's query outputs). Under DDP each rank sees only its shard of the global batch,
    and DDP broadcasts rank 0's buffers before every forward pass, which would overwrite the
    rows other ranks wrote; writing every rank's rows on every rank keeps the buffers equal on
    all ranks, and equal to a single process's at the same global batch. Every rank's batch
    has the same size (:class:`hashlearn.deep.pipeline.EpochBatchSampler`)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return (indices, *rows)
    out = []
    for tensor in (indices, *rows):
        tensor = tensor.detach().contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        out.append(torch.cat(parts))
    return tuple(out)


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        dist.barrier()


def teardown() -> None:
    """Leave the process group (safe to call when none exists)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
