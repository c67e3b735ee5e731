"""Deep hashing: networks, similarity losses, quantization strategies and a seeded trainer.

Needs ``torch`` (``pip install hashlearn[deep]``); nothing outside this package imports it, so
the rest of hashlearn works without torch. Names are imported lazily on first use (so that
``import hashlearn.deep`` itself works without torch).

Modules, from the bottom up: ``signs`` (binarisation, straight-through sign, activations),
``losses`` (similarity losses, registered by name), ``quantization`` (quantization terms),
``backbones`` and ``model`` (the network), ``optim`` (optimizers, schedules), ``inputs``
(labels, input spec, validation split), ``config`` (:class:`TrainConfig`: every default),
``objective`` (the per-batch objective), ``checkpoints`` (checksummed tensor files,
crash-safe checkpoint folders), ``runs`` (run directory: lock, resume, results, divergence
reports), ``hasher`` (the trained model: :class:`DeepHasher`,
:func:`load_run`), ``trainer`` (the training loop), ``train_dataset``
(:func:`train_on_dataset`, lazy image splits), ``distributed`` and ``features`` (helpers).

Main entry points::

    from hashlearn.deep import TrainConfig, Trainer, train_on_dataset, load_run
    hasher = train_on_dataset(TrainConfig(loss="dpsh", quantization="hswd", n_bits=32),
                              load_dataset("digits"), "runs/dpsh-hswd")
    codes = load_run("runs/dpsh-hswd").encode(images)

A run is scored by :func:`hashlearn.evaluation.evaluate_run` (``evaluation`` sits above
``deep`` in the layering, so ``deep`` never imports it).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "Trainer": "trainer",
    "TrainingDivergedError": "config",
    "train_on_dataset": "train_dataset",
    "DeepHasher": "hasher",
    "load_run": "hasher",
    "HashNetwork": "model",
    "build_network": "model",
    "build_backbone": "backbones",
    "BACKBONES": "backbones",
    "extract_features": "features",
    "pretrain_classifier": "features",
    "get_loss": "losses",
    "available_losses": "losses",
    "get_quantization": "quantization",
    "QUANTIZATIONS": "config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"hashlearn.deep.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'hashlearn.deep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
