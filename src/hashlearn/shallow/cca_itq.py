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

from hashlearn._scaling import safe_mean, unit_scaled
from hashlearn._validation import check_features, check_n_bits
from hashlearn.quantize.base import BaseQuantizer
from hashlearn.registry import register_method
from hashlearn.shallow._base import check_int, check_positive, limit_blas_threads
from hashlearn.shallow._labels import check_labels
from hashlearn.shallow._linalg import itq_rotation


@register_method("cca-itq")
class CCAITQ(BaseQuantizer):
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
        correlations_ (n_bits,).
    """

    requires_labels = True

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

    @limit_blas_threads
    def fit(self, X: Any, y: Any) -> CCAITQ:
        """Learn the CCA directions and the rotation from features ``X`` and labels ``y``."""
        check_positive(self.reg, "reg", allow_zero=True)
        check_int(self.max_iter, "max_iter", minimum=0)
        X = check_features(X, "X", min_samples=2)
        Y = check_labels(y, len(X))
        n_bits = check_n_bits(self.n_bits, maximum=X.shape[1])
        self.mean_ = safe_mean(X)
        # Codes are signs of a linear map, so scaling the centred data by a power of two (exact)
        # changes no code; it keeps the covariances clear of overflow and underflow.
        Xc = unit_scaled(X - self.mean_.astype(X.dtype))[0]
        Yc = Y - Y.mean(axis=0)
        n = len(X)
        Cxx = (Xc.T @ Xc).astype(np.float64) / n
        Cyy = Yc.T @ Yc / n
        Cxy = (Xc.T @ Yc.astype(Xc.dtype)).astype(np.float64) / n
        Cxx += self.reg * np.trace(Cxx) / len(Cxx) * np.eye(len(Cxx)) + 1e-12 * np.eye(len(Cxx))
        Cyy += (self.reg * np.trace(Cyy) / len(Cyy) + 1e-12) * np.eye(len(Cyy))
        # Cxy Cyy⁻¹ Cyx w = ρ² Cxx w: the canonical directions of X.
        M = Cxy @ linalg.solve(Cyy, Cxy.T, assume_a="pos")
        eigvals, eigvecs = linalg.eigh((M + M.T) / 2, Cxx)
        order = np.argsort(eigvals)[::-1][:n_bits]
        corr = np.sqrt(np.clip(eigvals[order], 0.0, None))
        directions = eigvecs[:, order] * corr
        R = itq_rotation(Xc @ directions.astype(Xc.dtype), self.max_iter, self.random_state)
        self.correlations_ = corr
        self.projection_ = directions @ R
        self.n_features_in_ = X.shape[1]
        self.n_bits_ = n_bits
        return self

    @limit_blas_threads
    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.projection_
