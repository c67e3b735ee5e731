"""Orthogonal-matrix helpers shared by the quantizers and the shallow methods.

One implementation each of the polar factor (the closed form of every orthogonal Procrustes
problem), the seeded random orthogonal matrix, the binary sign and the ITQ alternation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from tqdm.auto import tqdm


def polar(M: np.ndarray) -> np.ndarray:
    """Orthonormal polar factor ``argmax_{UᵀU=I} tr(Uᵀ M) = P Qᵀ`` for the thin SVD ``P Σ Qᵀ``.

    This solves every orthogonal Procrustes problem used here; for ITQ, ``M = Vᵀ B`` gives the
    ``R`` minimising ``‖B − V R‖_F`` (Gong & Lazebnik, CVPR 2011, §2.3).

    When a square ``M`` is rank-deficient (e.g. ITQ on features with constant, hence zero-centred,
    columns) the factor is not unique on the null spaces, and LAPACK's singular vectors there
    are arbitrary. Our choice, so that results are deterministic: that part maps the canonical
    basis of ``null(M)`` (:func:`complement_basis`) onto the canonical basis of ``null(Mᵀ)``
    in order; it does not change ``tr(Uᵀ M)``.
    """
    P, s, Qt = np.linalg.svd(M, full_matrices=False)
    rank = int(np.sum(s > s.max(initial=0.0) * max(M.shape) * np.finfo(np.float64).eps))
    if M.shape[0] != M.shape[1] or rank == len(s):
        return P @ Qt
    U = P[:, :rank] @ Qt[:rank]
    k = M.shape[0] - rank
    return U + complement_basis(P[:, :rank], k) @ complement_basis(Qt[:rank].T, k).T


def complement_basis(U: np.ndarray, m: int) -> np.ndarray:
    """``m`` orthonormal columns spanning (part of) the orthogonal complement of ``span(U)``.

    Deterministic, whatever basis ``U`` (d × r, orthonormal columns) is given in: the columns of
    the complement's projector ``I − U Uᵀ`` (which depends on the subspace only) are
    orthonormalised greedily, largest residual first (ties by column), and each vector's
    largest-magnitude entry is made positive.
    """
    d = U.shape[0]
    residual = np.eye(d) - U @ U.T
    out = np.zeros((d, m))
    for j in range(m):
        norms = np.linalg.norm(residual, axis=0)
        pick = int(np.argmax(np.round(norms, 12)))
        v = residual[:, pick] / norms[pick]
        v = v * (1.0 if v[np.argmax(np.abs(np.round(v, 12)))] >= 0 else -1.0)
        out[:, j] = v
        residual = residual - np.outer(v, v @ residual)
    return out


def random_orthogonal(k: int, random_state: Any) -> np.ndarray:
    """A Haar-distributed random orthogonal k × k matrix (QR of a Gaussian, signs fixed).

    ``random_state`` is a seed or a ``RandomState`` (advanced in place).
    """
    rng = check_random_state(random_state)
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


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


def top_eigenvectors(S: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` leading eigenvectors (columns) of the symmetric ``S``, signs fixed so that
    each column's largest-magnitude entry is positive (deterministic across LAPACK builds)."""
    vectors = np.linalg.eigh(S)[1][:, ::-1][:, :k]
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    return vectors * np.where(flip == 0, 1.0, flip)


def itq(
    V: np.ndarray,
    R: np.ndarray,
    max_iter: int,
    *,
    on_iteration: Callable[[np.ndarray], None] | None = None,
    progress: bool = False,
    desc: str = "ITQ",
) -> tuple[np.ndarray, int]:
    """ITQ's alternation (Gong & Lazebnik, CVPR 2011 / TPAMI 2013, eq. 2) from rotation ``R``.

    Fix ``R``: ``B = sgn(V R)``; fix ``B``: ``R = polar(Vᵀ B)``. Each step lowers
    ``‖B − V R‖²``; iteration stops early at a fixed point (the signs stop changing, after
    which ``R`` cannot change either), so stopping there gives the same ``R`` as running on.
    Products run in ``V``'s precision (float32 stays float32), the SVD in float64.

    Returns ``(R, iterations run)``; ``on_iteration(V R)`` is called after every iteration.
    """
    Y = V @ R.astype(V.dtype)
    n_iter = 0
    for _ in tqdm(range(max_iter), desc=desc, disable=not progress):
        B = np.sign(Y)
        R = polar((V.T @ B).astype(np.float64))
        Y = V @ R.astype(V.dtype)
        n_iter += 1
        if on_iteration is not None:
            on_iteration(Y)
        if np.array_equal(np.sign(Y), B):
            break
    return R, n_iter
