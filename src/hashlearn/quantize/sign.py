"""Sign quantization: bits = sign of centred features, optionally after a projection."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from hashlearn._scaling import safe_mean, unit_scaled
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError, check_choice, check_features, check_n_bits
from hashlearn.quantize.base import BaseQuantizer
from hashlearn.registry import register_method


def pca_components(X_centred: np.ndarray, n_components: int) -> np.ndarray:
    """Top ``n_components`` principal directions (d, n_components), sign-fixed for determinism.

    The data are scaled to unit magnitude first (exactly, by a power of two), so the covariance
    neither overflows nor underflows for features near 1e±300.
    """
    X_centred = unit_scaled(X_centred)[0]
    cov = X_centred.T @ X_centred / max(len(X_centred) - 1, 1)
    eigvals, eigvecs = np.linalg.eigh(cov.astype(np.float64))
    components = eigvecs[:, ::-1][:, :n_components]
    # Fix each direction's sign so that its largest-magnitude entry is positive.
    flip = np.sign(components[np.abs(components).argmax(axis=0), np.arange(n_components)])
    return components * np.where(flip == 0, 1.0, flip)


@register_method("sign")
class SignQuantizer(BaseQuantizer):
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

    @limit_blas_threads
    def fit(self, X: Any, y: Any = None) -> SignQuantizer:
        """Learn the mean and the projection from training features ``X``."""
        check_choice(self.projection, ("pca", "random", "none"), "projection")
        X = check_features(X, "X", min_samples=2)
        n_features = X.shape[1]
        n_bits = n_features if self.n_bits is None else check_n_bits(self.n_bits)
        if self.projection != "random":
            check_n_bits(n_bits, maximum=n_features)
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
        self.n_features_in_ = n_features
        self.n_bits_ = n_bits
        return self

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_
