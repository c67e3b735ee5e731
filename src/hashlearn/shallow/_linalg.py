"""Small dense linear-algebra helpers shared by the shallow methods."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state


def polar(M: np.ndarray) -> np.ndarray:
    """Orthonormal polar factor argmax_{UᵀU=I} tr(Uᵀ M) = P Qᵀ for the thin SVD M = P Σ Qᵀ.

    This is the closed form of every orthogonal Procrustes problem used here.
    """
    P, _, Qt = np.linalg.svd(M, full_matrices=False)
    return P @ Qt


def random_rotation(n: int, random_state: Any) -> np.ndarray:
    """A seeded random orthogonal n × n matrix (QR of a Gaussian matrix, signs fixed)."""
    rng = check_random_state(random_state)
    Q, Rm = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.where(np.diag(Rm) < 0, -1.0, 1.0)


def sign(M: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Element-wise sign in {−1, +1} (0 and −0 map to +1, so codes are always binary).

    ``inplace=True`` overwrites the float array ``M`` instead of allocating: for an n × l
    array that saves two n-sized temporaries (adding +0 first turns −0 into +0, so the
    result equals the allocating version).
    """
    if not inplace:
        return np.where(M >= 0, 1.0, -1.0)
    np.add(M, 0.0, out=M)
    return np.copysign(1.0, M, out=M)


def itq_rotation(Z: np.ndarray, n_iter: int, random_state: Any) -> np.ndarray:
    """ITQ rotation (Gong & Lazebnik, CVPR 2011, §2.3): alternate B = sgn(Z R) and the
    Procrustes step R = U Wᵀ for the SVD Zᵀ B = U Σ Wᵀ, starting from a seeded random R."""
    R = random_rotation(Z.shape[1], random_state)
    for _ in range(n_iter):
        R = polar(Z.T @ sign(Z @ R))
    return R
