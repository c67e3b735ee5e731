"""Training configuration, label conversion and the optimizer/schedule factories.

:class:`TrainConfig` is everything that defines a deep hashing run; it is stored in the run's
``config.json`` and checked again when a run is resumed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from hashlearn._labels import labels_to_multihot
from hashlearn._validation import HashlearnInputError, check_choice, check_n_bits

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "step", "none")
STAGE1_ACTIVATIONS = ("identity", "tanh")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class TrainingDivergedError(HashlearnInputError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json["train"]``).

    Args:
        loss: similarity loss name (``hashlearn.deep.losses.available_losses()``).
        n_bits: code length.
        quantization: ``none``, ``penalty``, ``hswd``, ``swd`` or ``h2q`` (two-stage).
        quantization_weight: weight of the quantization term (None = the strategy's default).
        n_projections: random projections of ``swd``.
        loss_kwargs: extra constructor arguments of the loss.
        backbone: ``cnn``, ``mlp`` or a pretrained network (see ``backbones.BACKBONES``).
        freeze_backbone: train only the head over cached backbone features.
        weights: local weights file of a pretrained backbone.
        hidden: width of the head's hidden layer; None = 256 over features, 0 after a CNN.
        cnn_width, cnn_features: size of the small CNN.
        optimizer, lr, weight_decay, momentum: ``adam`` or ``sgd`` and their parameters.
        schedule: ``cosine`` (to 0 over ``epochs``), ``step`` (× ``gamma`` every
            ``step_size`` epochs) or ``none``.
        epochs, batch_size: training length and batch size (per process when distributed).
        patience, min_delta: early stopping when validation mAP has not improved by more than
            ``min_delta`` for ``patience`` epochs (0 = never stop early).
        val_fraction: share of the training split held out for validation when the data has
            no validation split.
        val_queries, val_database: validation mAP is computed for at most ``val_queries``
            validation items against at most ``val_database`` training items (seeded subsets).
        h2q_loss, h2q_solver, h2q_max_samples: H²Q quantization loss (``l2``, ``l1``,
            ``min_entry``, ``bit_var``), solver (``fast``, or ``sgd``: the paper's SGD, for a
            faithful reproduction) and the number of training embeddings (seeded subset) the
            two-stage rotation (``h2q`` or ``itq``) is fitted on.
        stage1_activation: the hash layer's activation while training a two-stage run
            (``h2q``, ``itq``): ``identity`` (default: the H²Q authors' protocol, a plain linear
            hash layer, λ = 0) or ``tanh``. Losses that take signs inside (GreedyHash, DBDH)
            keep their straight-through activation.
        head_lr_multiplier: learning rate of the new layers (hash head, a loss's own
            parameters) relative to ``lr`` (reference deep hashing code often trains the hash
            layer faster than a pretrained backbone; default 1).
        seed: seeds weights, batch order, hold-out and random targets.
        device: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
            Not part of what defines a run: a run may be resumed on another device (random
            draws all come from CPU generators; GPU arithmetic is only reproducible on the
            same kind of GPU). The device actually used is stored as ``config.json["device"]``.
    """

    loss: str = "dpsh"
    n_bits: int = 32
    quantization: str = "none"
    quantization_weight: float | None = None
    n_projections: int = 10000
    loss_kwargs: dict = field(default_factory=dict)
    backbone: str = "cnn"
    freeze_backbone: bool = False
    weights: str | None = None
    hidden: int | None = None
    cnn_width: int = 16
    cnn_features: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 128
    patience: int = 5
    min_delta: float = 0.0
    val_fraction: float = 0.1
    val_queries: int = 1000
    val_database: int = 5000
    h2q_loss: str = "l2"
    h2q_solver: str = "fast"
    stage1_activation: str = "identity"
    head_lr_multiplier: float = 1.0
    h2q_max_samples: int = 20000
    seed: int = 0
    device: str = "auto"

    def validate(self) -> TrainConfig:
        from hashlearn.deep.quantization import QUANTIZATIONS
        from hashlearn.quantize.h2q import SOLVERS
        from hashlearn.quantize.losses import LOSSES

        check_n_bits(self.n_bits)
        check_choice(self.quantization, QUANTIZATIONS, "quantization")
        check_choice(self.h2q_solver, SOLVERS, "H²Q solver")
        check_choice(self.h2q_loss, LOSSES, "H²Q loss")
        check_choice(self.stage1_activation, STAGE1_ACTIVATIONS, "stage-1 activation")
        if not (self.head_lr_multiplier > 0 and math.isfinite(self.head_lr_multiplier)):
            raise HashlearnInputError(
                f"head_lr_multiplier must be a positive number, got {self.head_lr_multiplier}."
            )
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise HashlearnInputError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.batch_size < 2:
            raise HashlearnInputError("batch_size must be at least 2 (losses compare pairs).")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise HashlearnInputError(f"lr must be a positive number, got {self.lr}.")
        if not 0 < self.val_fraction < 1:
            raise HashlearnInputError(f"val_fraction must be in (0, 1), got {self.val_fraction}.")
        resolve_device(self.device)
        return self


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or a clear error.

    ``auto`` is ``cuda`` when ``torch.cuda.is_available()`` and the CPU otherwise; ``cuda``
    means the current CUDA device (see :func:`hashlearn.deep.distributed.process_device` for
    one GPU per process under torchrun).
    """
    name = str(device) if isinstance(device, torch.device) else device
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise HashlearnInputError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        )
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
            "use --device cpu (device='cpu') or --device auto."
        )
    resolved = torch.device(name)
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise HashlearnInputError(
            f"device {name!r} was requested but only {count} CUDA device(s) are visible "
            f"(cuda:0 to cuda:{count - 1}); pick one of them or use --device cpu."
        )
    return resolved


# -- labels and inputs -----------------------------------------------------------------------
def to_multihot(y: np.ndarray, n_classes: int, name: str = "labels") -> torch.Tensor:
    """1-D class ids or 2-D multi-hot labels → float multi-hot ``(n, n_classes)``."""
    return torch.from_numpy(labels_to_multihot(y, n_classes, name=name, dtype=np.float32))


def input_kind(backbone: str) -> str:
    """``"features"`` for the ``mlp`` backbone, ``"images"`` for the others."""
    return "features" if backbone == "mlp" else "images"


def input_spec(backbone: str, inputs: np.ndarray) -> dict:
    """How to turn raw inputs into network inputs: kind, shape and normalisation, from the
    training inputs (stored in ``config.json`` so that encoding later does the same)."""
    kind = input_kind(backbone)
    if kind == "features":
        if inputs.ndim != 2:
            raise HashlearnInputError(
                f"the 'mlp' backbone takes feature rows (n, d), got shape {inputs.shape}."
            )
        flat = inputs.astype(np.float64)
        return {
            "kind": kind,
            "in_features": int(inputs.shape[1]),
            "mean": float(flat.mean()),
            "std": float(flat.std() or 1.0),
        }
    if inputs.ndim not in (3, 4):
        raise HashlearnInputError(
            f"backbone {backbone!r} takes images (n, H, W[, C]), got shape {inputs.shape}; "
            "use --backbone mlp for feature vectors."
        )
    spec = {
        "kind": kind,
        "image_shape": list(inputs.shape[1:]),
        "in_channels": 1 if inputs.ndim == 3 else int(inputs.shape[3]),
        "mean": 0.0,
        "std": 1.0,
    }
    if backbone == "cnn":  # pretrained networks apply ImageNet normalisation themselves
        pixels = _scaled_sample(inputs)
        spec["mean"], spec["std"] = float(pixels.mean()), float(pixels.std() or 1.0)
    return spec


def _scaled_sample(images: np.ndarray) -> np.ndarray:
    sample = images[: min(len(images), 5000)].astype(np.float64)
    return sample / 255.0 if images.dtype == np.uint8 else sample


def make_optimizer(config: TrainConfig, params: list) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over ``params`` (tensors or torch parameter groups)."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer):
    """Per-epoch learning-rate schedule: cosine annealing to 0, step decay, or constant."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _constant)


def _constant(epoch: int) -> float:
    return 1.0
