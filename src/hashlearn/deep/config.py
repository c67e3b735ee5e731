"""Training configuration: every default of a deep hashing run, in one place.

:class:`TrainConfig` is everything that defines a deep hashing run; it is stored in the run's
``config.json`` and checked again when a run is resumed. Its field defaults are the defaults of
the Python API and of ``hashlearn train`` alike (the CLI reads them from here), and the sizes
below are those of the networks built from it, and the names below the choices it accepts.
This module does not import torch.

Error messages of :mod:`hashlearn.deep` name the Python arguments in backquotes
(```resume=True```, ```lr```); the CLI rewrites those to its flags.

Recipes (:data:`RECIPES`): each seed paper's authors' settings as a table of overrides.

A recipe sets :class:`~hashlearn.deep.config.TrainConfig` fields before the user's own:
``TrainConfig.from_options({"recipe": "h2q", "loss": "dch", "lr": 3e-5})`` takes every field
the recipe names from the recipe, then ``lr`` from the user. ``hashlearn train --recipe`` and
the ``recipe`` key of a ``hashlearn reproduce`` ``train`` table do the same. The quantization
strategy is never part of a recipe (it is the method being compared).

``h2q`` — Lucas-Schwengber/h2q, ``src/models/QS/`` (``hparams.json``, ``lightning_module.py``,
``train.py``) and ``src/experiments/run_QS.sh``:

* Adam, lr 1e-5, weight decay 5e-4 (1e-4 for WGLHH, their script), constant learning rate;
* the hash layer (and any new head layer) at 10× the backbone's learning rate, initialised
  N(0, 0.01) with bias 0 (``src/utils/architectures/CNNF_alexnet.py``);
* 100 epochs, early stopping on validation mAP with patience 20 and ``min_delta`` 0.05
  (Lightning's ``EarlyStopping``; the kept model is the best validation epoch whatever the
  delta, their ``ModelCheckpoint``);
* the batch size their script uses per loss: DPSH 128, DHN 64, DCH 256, WGLHH 64,
  HashNet 256, HyP² 100, CEL 128 (others keep hashlearn's 128);
* the H²Q variants of HashNet and DCH (:mod:`hashlearn.deep.losses.hashnet`, ``dch``); DPSH
  and DHN as their ``src/utils/losses.py`` has them, ``θ = zᵢᵀzⱼ`` (scale 1, not DPSH's ½) on
  in-batch pairs; the paper's SGD solver for the rotation, a linear hash layer in stage one.
  Their quantization weights are per-item sums over bits (``0.01 · mean Σ_bits``), i.e.
  ``0.01 k`` on our per-entry means: give ``quantization_weight`` yourself to add a penalty.

``hswd`` — khoadoan106/single_loss_quantization ``python/config.py`` and the commands of its
README (built on swuxyj/DeepHash-pytorch):

* Adam, lr 1e-5 (the README's commands; ``config.py``'s default optimiser is RMSprop),
  weight decay 1e-5, no schedule (``--sched`` None), 200 epochs, batch size 64, one learning
  rate for every layer, the networks' default hash-layer initialisation;
* the HSWD variants of HashNet (α = 0.1, memory pairs, β per 20 epochs) and DCH
  (DeepHash-pytorch's, γ = 20), DBDH as DeepHash-pytorch;
* training on the whole training split: when the data has no validation split, validation
  items are drawn from the database (outside train, seeded), never from the query split.
  Their code instead keeps the epoch with the best mAP *on the query split* (tested every 10
  epochs), which selects on the test set; we do not. No early stopping (patience 0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from hashlearn._validation import HashlearnInputError, check_choice, check_n_bits
from hashlearn.exceptions import TrainingDivergedError  # noqa: F401  (re-exported)
from hashlearn.quantize.h2q import SOLVERS
from hashlearn.quantize.losses import LOSSES
from hashlearn.vocab import QUANTIZATIONS, TWO_STAGE

# Quantization strategies (:mod:`hashlearn.deep.quantization`) and the two-stage ones, which
# fit a rotation after training (:mod:`hashlearn.deep.two_stage`): tables of hashlearn.vocab.
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


# ----------------------------------------------------------------------------- recipes
RECIPES: dict[str, dict[str, Any]] = {
    "h2q": {
        "summary": "the H2Q authors' training (Lucas-Schwengber/h2q src/models/QS/)",
        "fields": {
            "optimizer": "adam", "lr": 1e-5, "weight_decay": 5e-4, "schedule": "none",
            "head_lr_multiplier": 10.0, "head_init_std": 0.01, "epochs": 100, "patience": 20,
            "min_delta": 0.05, "h2q_solver": "sgd", "stage1_activation": "identity",
        },
        "per_loss": {
            "dpsh": {"batch_size": 128, "loss_kwargs": {"scale": 1.0, "pairs": "batch"}},
            "dhn": {"batch_size": 64, "loss_kwargs": {"scale": 1.0, "pairs": "batch"}},
            "dch": {"batch_size": 256, "loss_kwargs": {"variant": "h2q"}},
            "wglhh": {"batch_size": 64, "weight_decay": 1e-4},
            "hashnet": {"batch_size": 256, "loss_kwargs": {"variant": "h2q"}},
            "hyp2": {"batch_size": 100}, "cel": {"batch_size": 128},
        },
    },
    "hswd": {
        "summary": "the HSWD authors' training (khoadoan106/single_loss_quantization python/)",
        "fields": {
            "optimizer": "adam", "lr": 1e-5, "weight_decay": 1e-5, "schedule": "none",
            "head_lr_multiplier": 1.0, "epochs": 200, "batch_size": 64, "patience": 0,
            "min_delta": 0.0, "val_from_database": True,
        },
        "per_loss": {
            "hashnet": {"loss_kwargs": {"variant": "hswd"}},
            "dch": {"loss_kwargs": {"variant": "hswd"}},
            "dbdh": {"loss_kwargs": {"variant": "deephash"}},
        },
    },
}  # fmt: skip


def available_recipes() -> list[str]:
    return sorted(RECIPES)


def recipe_overrides(name: str, loss: str) -> dict[str, Any]:
    """The TrainConfig fields recipe ``name`` sets for ``loss`` (``loss_kwargs`` included)."""
    if name not in RECIPES:
        raise HashlearnInputError(
            f"unknown recipe {name!r}; choose one of {', '.join(available_recipes())} "
            "(or leave it unset for hashlearn's defaults)."
        )
    recipe = RECIPES[name]
    fields = dict(recipe["fields"])
    fields.update(recipe["per_loss"].get(loss, {}))
    return fields


def describe_recipe(name: str) -> str:
    """One line per recipe for ``hashlearn train --help``."""
    recipe = RECIPES[name]
    fields = ", ".join(f"{k}={v}" for k, v in recipe["fields"].items())
    return f"{name}: {recipe['summary']}: {fields}; per loss: " + "; ".join(
        f"{loss} {values}" for loss, values in recipe["per_loss"].items()
    )


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json["train"]``).

    Args:
        loss: similarity loss name (``hashlearn.deep.losses.available_losses()``).
        n_bits: code length.
        quantization: a name of ``hashlearn.vocab.QUANTIZATIONS`` (``h2q``, ``itq`` and
            ``itq-centred`` are two-stage).
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
            ``min_delta`` for ``patience`` epochs (0 = never stop early); the returned model is
            the best validation epoch whatever ``min_delta``.
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
        recipe: a named recipe of the authors' settings (``h2q``, ``hswd``;
            :data:`RECIPES`), applied to the fields left at their defaults here
            (use :meth:`from_options` to give a recipe and any explicit values exactly).
        head_init_std: initialise the hash layer's weights N(0, std²) with bias 0 (None: torch's
            default initialisation; the H²Q code uses 0.01).
        val_from_database: when the data has no validation split, validate on a seeded sample of
            ``val_queries`` database items outside the training split instead of holding out
            ``val_fraction`` of train (the ``hswd`` recipe: train on the whole split).
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
    head_init_std: float | None = None
    val_from_database: bool = False
    recipe: str | None = None
    recipe_applied: bool = field(default=False, repr=False)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.recipe is not None and not self.recipe_applied:
            defaults = TrainConfig()
            for name, value in recipe_overrides(self.recipe, self.loss).items():
                if name == "loss_kwargs":
                    self.loss_kwargs = {**value, **self.loss_kwargs}
                elif getattr(self, name) == getattr(defaults, name):
                    setattr(self, name, value)
            self.recipe_applied = True

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainConfig:
        """A config from explicit ``options``: its ``recipe`` (if any) first, then every option
        given, whatever its value (the CLI and ``hashlearn reproduce`` build configs so)."""
        options = dict(options)
        recipe = options.get("recipe")
        if recipe is None:
            return cls(**options)
        values = recipe_overrides(recipe, options.get("loss", cls.loss))
        kwargs = {**values.pop("loss_kwargs", {}), **options.pop("loss_kwargs", {})}
        return cls(**{**values, **options, "loss_kwargs": kwargs, "recipe_applied": True})

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
