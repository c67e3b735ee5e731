"""Quantization losses of H²Q (Schwengber et al., arXiv 2311.04207, Sec. 3.3) with gradients.

Each loss measures how far rotated embeddings ``Y = Z R`` (rows of norm √k, ``k`` bits) are from
binary codes, and is symmetric under ``Y -> -Y`` (so a global sign flip of the rotation is free):

- ``"l2"``:        mean over entries of ``(y - sgn y)²``  (the paper's default, also ITQ's loss);
- ``"l1"``:        mean over entries of ``|y - sgn y|``;
- ``"min_entry"``: mean over items of ``logsumexp_j(-y_j²)``, a smooth penalty on each item's
  smallest ``|y_j|`` (the bit most likely to flip);
- ``"bit_var"``:   mean over entries of ``σ(y)(1 - σ(y))``, the variance of a Bernoulli(σ(y)) bit.

:func:`loss_and_grad` returns the value and ``∂L/∂Y``, from which a solver gets the gradient with
respect to the rotation as ``Zᵀ ∂L/∂Y``. ``sgn`` is treated as piecewise constant (gradient 0),
exactly as automatic differentiation does in the paper's code.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logsumexp, softmax

from hashlearn._validation import check_choice

LOSSES = ("l2", "l1", "min_entry", "bit_var")

# H²Q's SGD learning rates (Schwengber et al., arXiv 2311.04207, and the authors' code): 0.1,
# except 0.01 for bit-var.
PAPER_LEARNING_RATES = {"l2": 0.1, "l1": 0.1, "min_entry": 0.1, "bit_var": 0.01}


def check_loss(loss: str) -> str:
    """Return ``loss`` if it is a known quantization loss, else raise a clear error."""
    return check_choice(loss, LOSSES, "loss")


def quantization_loss(Y: np.ndarray, loss: str = "l2") -> float:
    """Value of the quantization loss ``loss`` on rotated embeddings ``Y`` (n, k)."""
    return loss_and_grad(Y, loss, grad=False)[0]


def loss_and_grad(
    Y: np.ndarray, loss: str = "l2", grad: bool = True
) -> tuple[float, np.ndarray | None]:
    """Loss value and its gradient ``∂L/∂Y`` (same shape as ``Y``; ``None`` if not ``grad``)."""
    check_loss(loss)
    n_entries = Y.size
    if loss == "l2":
        residual = Y - np.sign(Y)
        value = float(np.einsum("ij,ij->", residual, residual)) / n_entries
        return value, (residual * (2.0 / n_entries) if grad else None)
    if loss == "l1":
        residual = Y - np.sign(Y)
        value = float(np.abs(residual).sum()) / n_entries
        return value, (np.sign(residual) / n_entries if grad else None)
    if loss == "min_entry":
        neg_sq = -(Y * Y)
        value = float(logsumexp(neg_sq, axis=1).mean())
        if not grad:
            return value, None
        return value, softmax(neg_sq, axis=1) * (-2.0 / len(Y)) * Y
    sig = expit(Y)
    bump = sig * (1.0 - sig)
    value = float(bump.sum()) / n_entries
    return value, (bump * (1.0 - 2.0 * sig) / n_entries if grad else None)
