"""Orthogonal matrices as products of Householder reflections, with an exact backward pass.

H²Q (Schwengber et al., arXiv 2311.04207, Sec. 3.3) parametrises the rotation as
``R = H(v_1) H(v_2) ... H(v_m)`` with ``H(v) = I - 2 v vᵀ / ‖v‖²``. Every orthogonal k × k matrix
of determinant ``(-1)^k`` is such a product with ``m = k``, and any unconstrained ``V`` gives an
orthogonal ``R``, so plain SGD on ``V`` stays on the orthogonal group. ``V = I`` gives ``R = -I``.

:func:`householder_backward` is the hand-derived reverse-mode gradient ``∂L/∂V`` from
``G = ∂L/∂R`` in O(m k²): with prefix ``P_{i-1} = H_1…H_{i-1}`` and ``Q_i = G (H_{i+1}…H_m)ᵀ``,
``∂L/∂H_i = P_{i-1}ᵀ Q_i =: M_i``, ``∂L/∂u_i = -2 (M_i + M_iᵀ) u_i`` for ``u_i = v_i / ‖v_i‖``,
and ``∂L/∂v_i = (I - u_i u_iᵀ) ∂L/∂u_i / ‖v_i‖``. Prefixes are recovered backwards with
``P_{i-1} = P_i H_i`` (reflections are involutions), so memory stays O(k²).
"""

from __future__ import annotations

import numpy as np


def _unit_rows(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(V, axis=1)
    if np.any(norms == 0):
        raise ValueError("a Householder vector has zero norm; the reflection is undefined.")
    return V / norms[:, None], norms


def householder_product(V: np.ndarray) -> np.ndarray:
    """``H(v_1) … H(v_m)`` for the rows ``v_i`` of ``V`` (m, k): an orthogonal k × k matrix."""
    U, _ = _unit_rows(np.asarray(V, dtype=np.float64))
    P = np.eye(U.shape[1])
    for u in U:
        P -= 2.0 * np.outer(P @ u, u)
    return P


def householder_backward(V: np.ndarray, G: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
    """Gradient ``∂L/∂V`` (m, k) of a loss with ``∂L/∂R = G`` at ``R = householder_product(V)``.

    Pass ``R`` when it is already computed, to skip the forward product.
    """
    U, norms = _unit_rows(np.asarray(V, dtype=np.float64))
    P = householder_product(V) if R is None else np.array(R, dtype=np.float64)
    Q = np.array(G, dtype=np.float64)
    grad = np.empty_like(U)
    for i in range(len(U) - 1, -1, -1):
        u = U[i]
        P -= 2.0 * np.outer(P @ u, u)  # now P = H_1 … H_{i-1}
        Qu = Q @ u
        g_u = -2.0 * (P.T @ Qu + Q.T @ (P @ u))
        grad[i] = (g_u - u * (u @ g_u)) / norms[i]
        Q -= 2.0 * np.outer(Qu, u)  # Q_{i-1} = Q_i H_i
    return grad
