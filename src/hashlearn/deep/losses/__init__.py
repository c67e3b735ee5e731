"""Deep hashing similarity losses, registered by name.

Every loss is a :class:`HashLoss` with the call ``loss(codes, labels, indices=None)`` and the
method's own quantization term ``loss.quantization_penalty(codes)``; build one with
``get_loss(name, n_bits, n_classes, **kwargs)``.
"""

from __future__ import annotations

from typing import Any

from hashlearn._validation import check_choice
from hashlearn.deep.losses import (  # noqa: F401  (importing registers the losses)
    adsh,
    cel,
    csq,
    dbdh,
    dch,
    dhn,
    dpsh,
    dsdh,
    dsh,
    greedyhash,
    hashnet,
    hyp2,
    orthohash,
    wglhh,
)
from hashlearn.deep.losses.base import _LOSSES, HashLoss, register_loss


def available_losses() -> list[str]:
    """Sorted names of every registered loss."""
    return sorted(_LOSSES)


def get_loss(name: str, n_bits: int, n_classes: int, **kwargs: Any) -> HashLoss:
    """Build the loss registered under ``name`` (see each class for its keyword arguments)."""
    check_choice(name, available_losses(), "loss")
    return _LOSSES[name](n_bits, n_classes, **kwargs)


__all__ = ["HashLoss", "available_losses", "get_loss", "register_loss"]
