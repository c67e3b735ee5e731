"""Rotation quantizers: codes = sign(preprocess(x) R) with a k × k orthogonal ``R``.

One mechanism for ITQ, H²Q and the random-rotation control; subclasses only choose ``R``
(:meth:`RotationQuantizer._fit_rotation`) and two preprocessing switches:

1. **Projection.** When the input dimension ``d`` equals ``n_bits`` (the post-hoc deep hashing
   case: a network's k-dimensional embedding; 1 bit per dimension of a sentence embedding)
   nothing precedes the rotation; constant (dead) columns are allowed there. When ``d > n_bits``
   the features are centred and projected on their top ``n_bits`` principal directions first
   (``mean_``, ``components_``), as in PCA-ITQ (Gong & Lazebnik, CVPR 2011).
2. **Centring without projection** (``_center_unprojected``): ITQ centres (it is defined on
   zero-mean data); H²Q does not, because the paper rotates the raw embeddings.
3. **Row rescaling** (``rescale_rows``): H²Q rescales every (projected) row to norm √k before the
   rotation, as the paper does, so its losses are comparable across code lengths. Rescaling by
   a positive number never changes a sign, so it changes no code; it does weight every item
   equally in the loss and sets the scale of :meth:`transform`. Zero rows stay zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state

from hashlearn._linalg import random_orthogonal
from hashlearn._rowwise import rowwise_matmul, rowwise_squared_norms
from hashlearn._scaling import safe_mean, unit_scaled
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError, check_features
from hashlearn.base import BaseHasher
from hashlearn.quantize.sign import SignQuantizer, pca_components
from hashlearn.registry import register_method


def rescale_rows(Z: np.ndarray) -> np.ndarray:
    """Rows of ``Z`` rescaled to Euclidean norm √k (k = number of columns); zero rows kept.

    Each row is first divided by a power of two near its largest entry, so the norm neither
    overflows (entries near 1e300) nor underflows (near 1e-300).
    """
    Z = unit_scaled(Z, axis=1)[0]
    norms = np.sqrt(rowwise_squared_norms(Z))[:, None]
    return Z * (np.sqrt(Z.shape[1]) / np.where(norms > 0, norms, 1.0))


class RotationQuantizer(BaseHasher):
    """Shared fit/transform for quantizers of the form sign(preprocess(x) R)."""

    rescale_rows: bool = True

    def _center_unprojected(self) -> bool:
        return False

    def _fit_rotation(
        self, Z: np.ndarray, rng: np.random.RandomState, Z_val: np.ndarray | None = None
    ) -> np.ndarray:
        """The k × k orthogonal rotation for preprocessed training features ``Z`` (n, k).

        ``Z`` keeps the input's float precision (float32 stays float32, for speed);
        ``Z_val``: preprocessed validation features (float64) or None.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def _n_bits_bounded(self) -> bool:
        return True

    def check_fit_shape(self, n_samples: int, n_features: int) -> None:
        """As :meth:`BaseHasher.check_fit_shape`, plus the samples a rotation needs."""
        super().check_fit_shape(n_samples, n_features)
        self._check_samples(n_samples, self._resolve_n_bits(n_features))

    def _check_samples(self, n_samples: int, n_bits: int) -> None:
        if n_samples < n_bits:
            raise HashlearnInputError(
                f"X has {n_samples} samples but n_bits={n_bits}: learning a {n_bits}-bit rotation "
                f"needs at least {n_bits} samples; pass more data or lower n_bits."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any = None, *, X_val: Any = None) -> RotationQuantizer:
        """Learn the preprocessing (mean, PCA) and the rotation from training features ``X``.

        ``X_val``: validation features, preprocessed like ``X``; the solvers that select an
        iterate on held-out data use them (H²Q's ``sgd``), the others ignore them.
        """
        X = self._check_X(X, reset=True, min_samples=2)
        n_samples, n_features = X.shape
        n_bits = self._resolve_n_bits(n_features)
        self._check_samples(n_samples, n_bits)
        constant = np.flatnonzero(np.ptp(X, axis=0) == 0)
        if n_features > n_bits:
            self.mean_ = safe_mean(X)
            centred = X - self.mean_.astype(X.dtype)
            self.components_ = pca_components(centred, n_bits)
            Z = centred @ self.components_.astype(X.dtype)
            del centred
            variances = unit_scaled(Z)[0].var(axis=0)
            n_informative = int(np.sum(variances > 1e-10 * max(variances.max(), 1e-300)))
            if n_informative < n_bits:
                raise HashlearnInputError(
                    f"X spans only {n_informative} directions of non-zero variance "
                    f"({len(constant)} of its {n_features} columns are constant), fewer than "
                    f"n_bits={n_bits}; lower n_bits or drop the constant/duplicate columns."
                )
        else:
            # Constant (dead) columns are allowed: the rotation mixes them with the others, and
            # its part that acts on them only is fixed deterministically (see _linalg.polar).
            self.mean_ = safe_mean(X) if self._center_unprojected() else None
            if self.mean_ is not None and len(constant):
                self.mean_[constant] = X[0, constant]  # centred constant columns exactly 0
            self.components_ = None
            Z = X if self.mean_ is None else X - self.mean_.astype(X.dtype)
        if self.rescale_rows:
            Z = rescale_rows(Z)
        self.n_bits_ = n_bits
        Z_val = None
        if X_val is not None:
            Z_val = self._embed(check_features(X_val, "X_val", estimator=self, reset=False))
        self.rotation_ = self._fit_rotation(Z, check_random_state(self.random_state), Z_val)
        return self

    def _embed(self, X: np.ndarray) -> np.ndarray:
        """Preprocessed features (before the rotation), float64."""
        Z = np.asarray(X, dtype=np.float64)
        if self.mean_ is not None:
            Z = Z - self.mean_
        if self.components_ is not None:
            Z = rowwise_matmul(Z, self.components_)
        return rescale_rows(Z) if self.rescale_rows else Z

    def _project(self, X: np.ndarray) -> np.ndarray:
        return rowwise_matmul(self._embed(X), self.rotation_)


@register_method("random-rotation")
class RandomRotation(RotationQuantizer):
    """Sign codes after a Haar-random rotation: the control that shows what learning R buys.

    Same preprocessing as :class:`~hashlearn.quantize.H2Q` (no centring in the deep case, PCA
    when the input is wider than ``n_bits``, rows rescaled to √k).

    Args:
        n_bits: code length (default: the input dimension).
        random_state: seed of the rotation.
    """

    _parameter_constraints: dict = {
        key: SignQuantizer._parameter_constraints[key] for key in ("n_bits", "random_state")
    }

    def __init__(self, n_bits: int | None = None, random_state: int | None = None):
        self.n_bits = n_bits
        self.random_state = random_state

    def _fit_rotation(
        self, Z: np.ndarray, rng: np.random.RandomState, Z_val: np.ndarray | None = None
    ) -> np.ndarray:
        return random_orthogonal(Z.shape[1], rng)
