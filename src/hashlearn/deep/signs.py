"""Signs of continuous codes: binarisation, the straight-through sign and the activations.

The lowest layer of :mod:`hashlearn.deep`: the losses, the quantization terms and the network
all build on these helpers, and this module imports none of them.

``activate(z, activation)`` is what a similarity loss sees of the network's continuous
outputs ``z``, for the activation the loss declares (``HashLoss.activation``):

* ``"tanh"`` — ``z`` is already ``tanh(W h)``, so codes are ``z`` (DPSH, HashNet, DCH, ...);
* ``"identity"`` — ``z = W h`` unbounded;
* ``"sign_ste"`` — ``z = W h`` and the loss sees ``sgn z`` with a straight-through gradient
  (GreedyHash, Su et al., NeurIPS 2018, Eq. 6–7: forward ``sgn``, backward identity).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

ACTIVATIONS = ("tanh", "identity", "sign_ste")

__all__ = ["ACTIVATIONS", "activate", "binarize", "sign_gap", "sign_ste"]


def binarize(u: Tensor) -> Tensor:
    """``+1`` where ``u > 0`` else ``-1`` (the convention of :func:`hashlearn.codes.pack`)."""
    return torch.where(u > 0, torch.ones_like(u), -torch.ones_like(u))


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor) -> Tensor:
        return binarize(u)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def sign_ste(u: Tensor) -> Tensor:
    """Binary codes in the forward pass, identity gradient in the backward pass.

    The straight-through estimator of GreedyHash (Su et al., NeurIPS 2018, eq. 6-7):
    ``h = sgn(u)`` forward, ``∂L/∂u = ∂L/∂h`` backward.
    """
    return _SignSTE.apply(u)


def sign_gap(u: Tensor) -> Tensor:
    """Mean squared distance to the binary codes, ``mean (u - sgn u)²`` (DPSH's term)."""
    return (u - binarize(u)).pow(2).mean()


def activate(z: Tensor, activation: str) -> Tensor:
    """Codes the loss sees for continuous outputs ``z`` (see the module docstring)."""
    if activation == "sign_ste":
        return sign_ste(z)
    return z
