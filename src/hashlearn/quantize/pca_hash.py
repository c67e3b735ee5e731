"""PCA hashing: one bit per top principal direction (the PCAH baseline of Gong & Lazebnik 2011).

Codes are ``sgn((x − mean) W)`` with ``W`` the top ``n_bits`` principal directions. The first
directions carry most of the variance, so the bits are unbalanced in information; ITQ and H²Q
fix that with a rotation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import _fit_context

from hashlearn._scaling import unit_scaled
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError
from hashlearn.quantize.sign import SignQuantizer
from hashlearn.registry import register_method


@register_method("pcah")
class PCAHash(SignQuantizer):
    """Sign of the top ``n_bits`` principal components of the centred features.

    Args:
        n_bits: code length, at most the input dimension (default: the input dimension).
        random_state: unused (PCA is deterministic); accepted for a uniform interface.
    """

    projection = "pca"
    center = True
    _parameter_constraints: dict = {
        key: SignQuantizer._parameter_constraints[key] for key in ("n_bits", "random_state")
    }

    def __init__(self, n_bits: int | None = None, random_state: int | None = None):
        self.n_bits = n_bits
        self.random_state = random_state

    def check_fit_shape(self, n_samples: int, n_features: int) -> None:
        """As :meth:`BaseHasher.check_fit_shape`, plus the samples ``n_bits`` directions need."""
        super().check_fit_shape(n_samples, n_features)
        self._check_samples(n_samples, self._resolve_n_bits(n_features))

    def _check_samples(self, n_samples: int, n_bits: int) -> None:
        if n_samples <= n_bits:
            raise HashlearnInputError(
                f"X has {n_samples} samples but n_bits={n_bits}: {n_bits} principal directions "
                f"need at least {n_bits + 1} samples; pass more data or lower n_bits."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any = None) -> PCAHash:
        """Learn the mean and the principal directions; needs ``n_bits`` informative directions."""
        X = self._check_X(X, reset=True)
        n_samples, n_features = X.shape
        n_bits = self._resolve_n_bits(n_features)
        self._check_samples(n_samples, n_bits)
        super().fit(X)
        variances = unit_scaled(self._project(X))[0].var(axis=0)
        n_informative = int(np.sum(variances > 1e-10 * max(variances.max(), 1e-300)))
        if n_informative < n_bits:
            raise HashlearnInputError(
                f"X spans only {n_informative} directions of non-zero variance, fewer than "
                f"n_bits={n_bits} (constant or duplicate columns?); lower n_bits or drop them."
            )
        return self
