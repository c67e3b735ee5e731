"""Named training recipes: each seed paper's authors' settings as a table of overrides.

A recipe sets :class:`~hashlearn.deep.config.TrainConfig` fields before the user's own:
``TrainConfig.from_options({"recipe": "h2q", "loss": "dch", "lr": 3e-5})`` takes every field
the recipe names from the recipe, then ``lr`` from the user. ``hashlearn train --recipe`` and
the ``recipe`` key of a ``hashlearn reproduce`` ``train`` table do the same. The quantization
strategy is never part of a recipe (it is the method being compared). This module does not
import torch.

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
  Their quantization weights are per-item sums over bits (``0.01 · mean Σ_bits``), i.e. ``0.01 k``
  on our per-entry means: give ``quantization_weight`` yourself when you add a penalty.

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

from typing import Any

from hashlearn._validation import HashlearnInputError

__all__ = ["RECIPES", "available_recipes", "describe_recipe", "recipe_overrides"]

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
    """One line per recipe for ``hashlearn methods`` / ``train --help``."""
    recipe = RECIPES[name]
    fields = ", ".join(f"{k}={v}" for k, v in recipe["fields"].items())
    return f"{name}: {recipe['summary']}: {fields}; per loss: " + "; ".join(
        f"{loss} {values}" for loss, values in recipe["per_loss"].items()
    )
