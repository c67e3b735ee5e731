"""Training configuration: every default of a deep hashing run, in one place.

:class:`TrainConfig` is everything that defines a deep hashing run; it is stored in the run's
``config.json`` and checked again when a run is resumed. Its field defaults are the defaults of
the Python API and of ``hashlearn train`` alike (the CLI reads them from here), and the sizes
below are those of the networks built from it, and the names below the choices it accepts.
This module does not import torch.

Error messages of :mod:`hashlearn.deep` name the Python arguments in backquotes
(```resume=True```, ```lr```); the CLI rewrites those to its flags.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from hashlearn._validation import HashlearnInputError, check_choice, check_n_bits
from hashlearn.quantize.h2q import SOLVERS
from hashlearn.quantize.losses import LOSSES

#: Quantization strategies (:mod:`hashlearn.deep.quantization`); the two-stage ones fit a
#: rotation after training (:mod:`hashlearn.deep.two_stage`).
QUANTIZATIONS = ("none", "penalty", "hswd", "swd", "h2q", "itq")
TWO_STAGE = ("h2q", "itq")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "step", "none")
STAGE1_ACTIVATIONS = ("identity", "tanh")
#: Named image transforms (:mod:`hashlearn.deep.pipeline`); ``auto``: ``h2q``'s on lazy image
#: files, the images as they are (``none``) for in-memory arrays.
TRANSFORMS = ("auto", "none", "h2q", "deephash")
#: Numeric precision of the backbone (autocast; ``fp16`` adds a gradient scaler).
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")

#: Size of the small CNN: channel width of its first block and length of its feature vector.
CNN_WIDTH = 16
CNN_FEATURES = 128
#: Width of the head's hidden layer over feature vectors (the ``mlp`` backbone) by default.
MLP_HIDDEN = 256
#: Random directions of the ``swd`` quantization term (10,000 in Doan et al., CVPR 2022).
N_PROJECTIONS = 10000


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
        freeze_backbone: train only the head over cached backbone features (otherwise the
            backbone is fine-tuned end to end, on in-memory arrays and lazy image files alike).
        weights: weights of a pretrained backbone: None (ImageNet, torchvision's weights API or
            the EfficientNet weight package), a torchvision weights name, a local file, or
            ``"none"`` (random initialisation).
        transform: image preprocessing (:data:`TRANSFORMS`): ``h2q`` (resize 256, centre crop
            224 for training and evaluation; the H²Q authors'), ``deephash`` (resize 256, random
            crop 224 and horizontal flip for training, centre crop for evaluation;
            DeepHash-pytorch's and the HSWD authors'), ``none`` (images as they are) or
            ``auto``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast over the backbone; fp16 with a
            gradient scaler). bf16 works on CPUs too.
        num_workers: ``torch.utils.data`` worker processes that decode and transform images
            (0: in the training process). Not part of what defines a run: the batches are the
            same for any number of workers.
        hidden: width of the head's hidden layer; None = :data:`MLP_HIDDEN` over features
            (``mlp``), none (0) after a CNN (see :meth:`hidden_width`).
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
        device: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``
            (:meth:`validate` checks the spelling; whether this machine has that device is
            checked when training starts, :func:`hashlearn.deep.distributed.resolve_device`).
            Not part of what defines a run: a run may be resumed on another device (random
            draws all come from CPU generators; GPU arithmetic is only reproducible on the
            same kind of GPU). The device actually used is stored as ``config.json["device"]``.
    """

    loss: str = "dpsh"
    n_bits: int = 32
    quantization: str = "hswd"
    quantization_weight: float | None = None
    n_projections: int = N_PROJECTIONS
    loss_kwargs: dict = field(default_factory=dict)
    backbone: str = "cnn"
    freeze_backbone: bool = False
    weights: str | None = None
    transform: str = "auto"
    precision: str = "fp32"
    num_workers: int = 0
    hidden: int | None = None
    cnn_width: int = CNN_WIDTH
    cnn_features: int = CNN_FEATURES
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    epochs: int = 20
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
        check_n_bits(self.n_bits)
        check_choice(self.quantization, QUANTIZATIONS, "quantization")
        check_choice(self.h2q_solver, SOLVERS, "H²Q solver")
        check_choice(self.h2q_loss, LOSSES, "H²Q loss")
        check_choice(self.stage1_activation, STAGE1_ACTIVATIONS, "stage-1 activation")
        if not (self.head_lr_multiplier > 0 and math.isfinite(self.head_lr_multiplier)):
            raise HashlearnInputError(
                f"`head_lr_multiplier` must be a positive number, got {self.head_lr_multiplier}."
            )
        check_choice(self.transform, TRANSFORMS, "transform")
        check_choice(self.precision, PRECISIONS, "precision")
        if int(self.num_workers) < 0:
            raise HashlearnInputError(f"`num_workers` must be 0 or more, got {self.num_workers}.")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.schedule, SCHEDULES, "schedule")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise HashlearnInputError(
                    f"`{name}` must be at least 1, got {getattr(self, name)}."
                )
        if self.batch_size < 2:
            raise HashlearnInputError("`batch_size` must be at least 2 (losses compare pairs).")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise HashlearnInputError(f"`lr` must be a positive number, got {self.lr}.")
        if not 0 < self.val_fraction < 1:
            raise HashlearnInputError(f"`val_fraction` must be in (0, 1), got {self.val_fraction}.")
        check_device(self.device)
        return self

    def network_activation(self, loss_activation: str) -> str:
        """The hash layer's activation for a loss that asks for ``loss_activation``: the loss's
        own, except while training a two-stage run (``stage1_activation``; a straight-through
        sign stays)."""
        if self.quantization in TWO_STAGE and loss_activation != "sign_ste":
            return self.stage1_activation
        return loss_activation

    def hidden_width(self) -> int:
        """Width of the head's hidden layer: ``hidden``, or by default :data:`MLP_HIDDEN` over
        feature vectors and none (0) after a CNN or a pretrained network."""
        if self.hidden is not None:
            return self.hidden
        return MLP_HIDDEN if input_kind(self.backbone) == "features" else 0


def check_device(device: Any) -> str:
    """``device`` if it is spelled ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, else a clear error."""
    name = device if isinstance(device, str) else str(device)  # e.g. a torch.device
    if not DEVICE_PATTERN.fullmatch(name):
        raise HashlearnInputError(
            f"`device` must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        )
    return name


def input_kind(backbone: str) -> str:
    """``"features"`` for the ``mlp`` backbone, ``"images"`` for the others."""
    return "features" if backbone == "mlp" else "images"
