"""Deep hashing: networks, similarity losses, quantization strategies and a seeded trainer.

Needs ``torch`` (``pip install hashlearn[deep]``); nothing outside this package imports it, so
the rest of hashlearn works without torch. Names are imported lazily on first use.

Main entry points::

    from hashlearn.deep import TrainConfig, Trainer, train_on_dataset, load_run, evaluate_run
    hasher = train_on_dataset(TrainConfig(loss="dpsh", quantization="hswd", n_bits=32),
                              load_dataset("digits"), "runs/dpsh-hswd")
    codes = load_run("runs/dpsh-hswd").encode(images)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "Trainer": "trainer",
    "TrainingDivergedError": "config",
    "train_on_dataset": "trainer",
    "DeepHasher": "runs",
    "load_run": "runs",
    "evaluate_run": "runs",
    "HashNetwork": "model",
    "build_network": "model",
    "build_backbone": "backbones",
    "BACKBONES": "backbones",
    "extract_features": "features",
    "pretrain_classifier": "features",
    "get_loss": "losses",
    "available_losses": "losses",
    "get_quantization": "quantization",
    "QUANTIZATIONS": "quantization",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"hashlearn.deep.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'hashlearn.deep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
