"""Sign quantization: bits = sign of centred features, optionally after a projection."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from hashlearn._linalg import top_eigenvectors
from hashlearn._rowwise import rowwise_matmul
from hashlearn._scaling import safe_mean, unit_scaled
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError
from hashlearn.base import POSITIVE_INT, BaseHasher
from hashlearn.registry import register_method


def pca_components(X_centred: np.ndarray, n_components: int) -> np.ndarray:
    """Top ``n_components`` principal directions (d, n_components), sign-fixed for determinism.

    The data are scaled to unit magnitude first (exactly, by a power of two), so the covariance
    neither overflows nor underflows for features near 1e±300.
    """
    X_centred = unit_scaled(X_centred)[0]
    cov = X_centred.T @ X_centred / max(len(X_centred) - 1, 1)
    return top_eigenvectors(cov.astype(np.float64), n_components)


@register_method("sign")
class SignQuantizer(BaseHasher):
    """Codes = sign((x − mean) P) with P a PCA, random Gaussian or identity projection.

    Args:
        n_bits: code length. With ``projection="none"`` it must equal the input dimension
            (or be ``None`` to use it).
        projection: ``"pca"`` (top principal directions), ``"random"`` (Gaussian hyperplanes)
            or ``"none"`` (sign of the centred features themselves, the usual way to binarise
            the output of a deep hashing network).
        center: subtract the training mean before taking signs.
        random_state: seed for ``projection="random"``.
    """

    _parameter_constraints: dict = {
        "n_bits": [POSITIVE_INT, None],
        "projection": [StrOptions({"pca", "random", "none"})],
        "center": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_bits: int | None = None,
        projection: str = "pca",
        center: bool = True,
        random_state: int | None = None,
    ):
        self.n_bits = n_bits
        self.projection = projection
        self.center = center
        self.random_state = random_state

    def _n_bits_bounded(self) -> bool:
        return self.projection != "random"

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any = None) -> SignQuantizer:
        """Learn the mean and the projection from training features ``X``."""
        X = self._check_X(X, reset=True, min_samples=2)
        n_features = X.shape[1]
        n_bits = self._resolve_n_bits(n_features, bounded=self.projection != "random")
        if self.projection == "none" and n_bits != n_features:
            raise HashlearnInputError(
                f"projection='none' gives one bit per feature ({n_features}), but n_bits={n_bits}; "
                "use projection='pca' or 'random' to change the code length."
            )
        self.mean_ = safe_mean(X) if self.center else np.zeros(n_features)
        if self.projection == "pca":
            self.components_ = pca_components(X - self.mean_, n_bits)
        elif self.projection == "random":
            rng = check_random_state(self.random_state)
            self.components_ = rng.standard_normal((n_features, n_bits))
        else:
            self.components_ = np.eye(n_features)
        self.n_bits_ = n_bits
        return self

    def _project(self, X: np.ndarray) -> np.ndarray:
        return rowwise_matmul(X - self.mean_, self.components_)
