"""Common machinery of the kernel-feature supervised hashers (SSAH, SDH, FSDH).

They all map x to centred anchor RBF features φ(x) (:mod:`hashlearn.shallow.kernel`) and hash
with a linear projection, code(x) = sgn(Ψᵀ φ(x)); only how Ψ and the training codes are learnt
differs. Learned state lives in plain-array attributes (``anchors_``, ``sigma_``,
``kernel_mean_``, ``projection_``) so :meth:`BaseQuantizer.save` / ``load`` work unchanged.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np

from hashlearn._scaling import check_magnitude
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError, check_features, check_n_bits
from hashlearn.quantize.base import BaseQuantizer
from hashlearn.shallow._labels import check_labels
from hashlearn.shallow.kernel import AnchorRBF, feature_gram, rbf_features

logger = logging.getLogger("hashlearn.shallow")


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float > 0 (or ≥ 0), else raise a clear error."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise HashlearnInputError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int ≥ ``minimum``, else raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HashlearnInputError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


class KernelHashing(BaseQuantizer):
    """Base class: anchor RBF features, then a learnt linear projection to the bits.

    Subclasses set ``__init__`` parameters ``n_bits``, ``n_anchors``, ``anchors``,
    ``block_size``, ``blas_threads``, ``random_state``, ``verbose`` (and their own) and implement
    ``_fit_codes(Phi, gram, Y, rng_seed) -> projection`` (m × n_bits).
    """

    requires_labels = True

    def _prepare(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate inputs, learn the kernel map; return (Φ centred (n, m), ΦᵀΦ, Y multi-hot)."""
        X = check_features(X, "X", min_samples=2)
        check_magnitude(X, type(self).__name__)
        Y = check_labels(y, len(X))
        n_bits = check_n_bits(self.n_bits)
        n_anchors = check_int(self.n_anchors, "n_anchors")
        check_int(self.block_size, "block_size")
        if n_bits > n_anchors:
            raise HashlearnInputError(
                f"n_bits={n_bits} exceeds n_anchors={n_anchors}; the codes are a projection of "
                "the anchor features, so use n_anchors >= n_bits."
            )
        rbf = AnchorRBF(
            n_anchors=n_anchors,
            anchors=self.anchors,
            block_size=self.block_size,
            random_state=self.random_state,
        )
        Phi = rbf.fit_transform(X)
        self.anchors_, self.sigma_, self.kernel_mean_ = rbf.anchors_, rbf.sigma_, rbf.mean_
        self.n_features_in_ = X.shape[1]
        self.n_bits_ = n_bits
        self.n_classes_ = Y.shape[1]
        return Phi, feature_gram(Phi), Y

    @limit_blas_threads
    def _project(self, X: np.ndarray) -> np.ndarray:
        Phi = rbf_features(X, self.anchors_, self.sigma_, self.kernel_mean_, self.block_size)
        return (Phi @ self.projection_.astype(np.float32)).astype(np.float64)
