"""CCA-ITQ (Gong, Lazebnik, Gordo, Perronnin, IEEE TPAMI 2013, §5): supervised ITQ.

Project the centred features on their top canonical directions with the labels, each scaled
by its canonical correlation, then learn the ITQ rotation (Gong & Lazebnik, CVPR 2011) that
best maps the projections onto the hypercube vertices. With c classes only c − 1 canonical
correlations are non-zero, so bits beyond that carry little label information (a known
limitation of the method, kept as is).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import _fit_context

from hashlearn._linalg import itq, random_orthogonal
from hashlearn._rowwise import rowwise_matmul
from hashlearn._scaling import safe_mean, unit_scaled
from hashlearn._threads import limit_blas_threads
from hashlearn.base import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    BaseHasher,
    SupervisedMixin,
)
from hashlearn.registry import register_method


@register_method("cca-itq")
class CCAITQ(SupervisedMixin, BaseHasher):
    """CCA projection scaled by canonical correlations, then an ITQ rotation.

    Args:
        n_bits: code length (at most the feature dimension).
        reg: ridge added to both covariance matrices, relative to their mean variance.
        max_iter: ITQ iterations.
        random_state: seed of the initial ITQ rotation.
        blas_threads: BLAS threads during fit and transform (default 1; ``None``: library
            setting), see :func:`~hashlearn._threads.limit_blas_threads`.

    Attributes:
        mean_ (d,), projection_ (d × n_bits: CCA directions · correlations · rotation),
        correlations_ (n_bits,). n_iter_: ITQ iterations run (it stops early at a fixed point).
    """

    _parameter_constraints: dict = {
        "n_bits": [POSITIVE_INT],
        "reg": [NON_NEGATIVE],
        "max_iter": [NON_NEGATIVE_INT],
        "random_state": ["random_state"],
        "blas_threads": [POSITIVE_INT, None],
    }

    def __init__(
        self,
        n_bits: int = 32,
        reg: float = 1e-4,
        max_iter: int = 50,
        random_state: Any = None,
        blas_threads: int | None = 1,
    ):
        self.n_bits = n_bits
        self.reg = reg
        self.max_iter = max_iter
        self.random_state = random_state
        self.blas_threads = blas_threads

    def _n_bits_bounded(self) -> bool:
        return True

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any) -> CCAITQ:
        """Learn the CCA directions and the rotation from features ``X`` and labels ``y``."""
        X, Y = self._check_X_y(X, y)
        n_bits = self._resolve_n_bits(X.shape[1])
        self.mean_ = safe_mean(X)
        # Codes are signs of a linear map, so scaling the centred data by a power of two (exact)
        # changes no code; it keeps the covariances clear of overflow and underflow.
        # Covariances in float64: the problem is ill-conditioned when d approaches n (1280-d
        # features, 1,000 rows), and float32 products, whose rounding depends on the CPU's
        # BLAS kernels, gave other directions (and mAP) on other machines.
        Xc = unit_scaled(X - self.mean_.astype(X.dtype))[0].astype(np.float64)
        Yc = Y - Y.mean(axis=0)
        n = len(X)
        Cxx = Xc.T @ Xc / n
        Cyy = Yc.T @ Yc / n
        Cxy = Xc.T @ Yc / n
        Cxx += self.reg * np.trace(Cxx) / len(Cxx) * np.eye(len(Cxx)) + 1e-12 * np.eye(len(Cxx))
        Cyy += (self.reg * np.trace(Cyy) / len(Cyy) + 1e-12) * np.eye(len(Cyy))
        # Cxy Cyy⁻¹ Cyx w = ρ² Cxx w: the canonical directions of X.
        M = Cxy @ linalg.solve(Cyy, Cxy.T, assume_a="pos")
        eigvals, eigvecs = linalg.eigh((M + M.T) / 2, Cxx)
        order = np.argsort(eigvals)[::-1][:n_bits]
        corr = np.sqrt(np.clip(eigvals[order], 0.0, None))
        # Only rank(Yc) correlations are non-zero (c − 1 for c classes); the rest are rounding
        # noise along arbitrary directions, set to exactly 0 so that they add nothing.
        corr[np.linalg.matrix_rank(Yc) :] = 0.0
        directions = eigvecs[:, order] * corr
        V = Xc @ directions
        R = random_orthogonal(n_bits, self.random_state)
        R, self.n_iter_ = itq(V, R, self.max_iter)
        self.correlations_ = corr
        self.projection_ = directions @ R
        self.n_bits_ = n_bits
        return self

    @limit_blas_threads
    def _project(self, X: np.ndarray) -> np.ndarray:
        return rowwise_matmul(X - self.mean_, self.projection_)
