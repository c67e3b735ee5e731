"""Optimizers and per-epoch learning-rate schedules of the trainer, built by name (the names
are :data:`hashlearn.deep.config.OPTIMIZERS` and :data:`~hashlearn.deep.config.SCHEDULES`)."""

from __future__ import annotations

import torch

__all__ = ["make_optimizer", "make_scheduler", "parameter_groups"]


def parameter_groups(params: list, new: list, new_lr: float) -> list[dict]:
    """Optimizer parameter groups: ``params`` not in ``new`` at the optimizer's learning rate,
    those in ``new`` (e.g. a hash head over a pretrained backbone) at ``new_lr``; empty groups
    are left out."""
    fresh = {id(p) for p in new}
    groups = [
        {"params": [p for p in params if id(p) not in fresh]},
        {"params": [p for p in params if id(p) in fresh], "lr": new_lr},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(
    name: str, params: list, *, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """``adam`` or ``sgd`` (with ``momentum``) over ``params`` (tensors or parameter groups)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, *, epochs: int, step_size: int, gamma: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: ``cosine`` annealing to 0 over ``epochs``, ``step`` decay (× ``gamma``
    every ``step_size`` epochs), or ``none`` (constant)."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _constant)


def _constant(epoch: int) -> float:
    return 1.0
