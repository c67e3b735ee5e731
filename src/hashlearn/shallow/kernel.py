"""Anchor RBF kernel features φ(x), shared by SSAH, SDH and FSDH.

φ(x) = [exp(−‖x − a_1‖² / (2σ²)), …, exp(−‖x − a_m‖² / (2σ²))] for m anchors a_q (SSAH
chapter §2.2.2, the nonlinear anchor embedding before the final objective; SDH, Shen et al.
CVPR 2015, §3.1). The chapter prints the denominator as 2σ; we keep the usual 2σ² so that σ
is a distance.

Width rule: σ = mean over the training points of the Euclidean distance to their nearest
anchor (the rule of the public SDH code), where a training point drawn as an anchor is measured
to its nearest *other* anchor. SDH draws 1,000 anchors from tens of thousands of points, so
the self-distances hardly matter there; on small training sets they dominate (300 anchors from
500 digits: 60 % zeros, σ 0.51 instead of 1.27, and a ridge classifier on φ drops from 98 % to
65 % held-out accuracy), so we exclude them (our choice). Features are centred with the
training mean, since the chapter's latent factor model assumes zero-centred data.

Anchors: ``"random"`` draws m distinct training points (the chapter's choice); ``"kmeans"``
runs seeded k-means (``kmeans_iter`` Lloyd iterations, on at most ``20 m`` sampled points to
keep the cost linear in n). Everything is computed in row blocks of ``block_size``, so the
only n-sized array is the n × m feature matrix itself (float32). Squared distances are
accumulated in float64 on anchor-centred data by the row-independent product of
:mod:`hashlearn._rowwise`, so the features of a query do not depend on the rows encoded with it
(a BLAS product may change in its last bits with the batch shape). A training fit computes the
distances once: they are written into the feature buffer, σ is taken from their row minima, and
the exponential is applied in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from hashlearn._rowwise import rowwise_matmul, rowwise_squared_norms
from hashlearn._scaling import check_magnitude
from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError, check_features
from hashlearn.base import POSITIVE_INT, BaseHasher, ParameterChecksMixin, SupervisedMixin


def _squared_distances(
    X: np.ndarray, anchors_t: np.ndarray, anchor_sq: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """‖x − a‖² for a block of rows (float64, clipped at 0), via ‖x‖² − 2 x·a + ‖a‖².

    Both sides are first shifted by ``offset`` (the anchors' mean): distances do not change,
    but the norms shrink, so the expansion loses little to cancellation. ``anchors_t`` are the
    shifted anchors transposed (d, m), ``anchor_sq`` their squared norms. The products are
    row-independent (:func:`~hashlearn._rowwise.rowwise_matmul`), so a row's features do not
    depend on the block it is computed in.
    """
    Xs = np.asarray(X, dtype=np.float64) - offset
    d2 = rowwise_matmul(Xs, anchors_t)
    d2 *= -2.0
    d2 += rowwise_squared_norms(Xs)[:, None]
    d2 += anchor_sq[None, :]
    return np.maximum(d2, 0.0, out=d2)


def _shifted_anchors(anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    anchors = np.asarray(anchors, dtype=np.float64)
    offset = anchors.mean(axis=0)
    shifted = anchors - offset
    return np.ascontiguousarray(shifted.T), rowwise_squared_norms(shifted), offset


def _exp_block(d2: np.ndarray, sigma: float, mean: np.ndarray | None) -> np.ndarray:
    """exp(−d²/2σ²) − mean of a float64 block, in place."""
    d2 *= -0.5 / (sigma * sigma)
    np.exp(d2, out=d2)
    if mean is not None:
        d2 -= mean
    return d2


def rbf_features(
    X: np.ndarray,
    anchors: np.ndarray,
    sigma: float,
    mean: np.ndarray | None = None,
    block_size: int = 4096,
) -> np.ndarray:
    """Centred anchor features φ(X) − mean, float32 (n, m), computed in row blocks."""
    out = np.empty((len(X), len(anchors)), dtype=np.float32)
    shifted = _shifted_anchors(anchors)
    for start in range(0, len(X), block_size):
        d2 = _squared_distances(X[start : start + block_size], *shifted)
        out[start : start + block_size] = _exp_block(d2, sigma, mean)
    return out


def _nearest_other(d2: np.ndarray, start: int, anchor_rows: np.ndarray | None) -> np.ndarray:
    """Squared distance of each row of a block to its nearest anchor, skipping the anchor that
    is the row itself (``anchor_rows[q]`` is the training row anchor q was drawn from)."""
    nearest = d2.min(axis=1)
    if anchor_rows is None or len(d2) == 0:
        return nearest
    inside = (anchor_rows >= start) & (anchor_rows < start + len(d2))
    if inside.any() and d2.shape[1] > 1:
        rows = anchor_rows[inside] - start
        masked = d2[rows].copy()
        masked[np.arange(len(rows)), np.flatnonzero(inside)] = np.inf
        nearest[rows] = masked.min(axis=1)
    return nearest


def fit_rbf_features(
    X: np.ndarray,
    anchors: np.ndarray,
    block_size: int = 4096,
    anchor_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Training features φ(X) (float32, not centred) and σ from one pass over the distances.

    The squared distances are written into the output buffer block by block while the
    nearest-anchor distances are summed (the σ rule; ``anchor_rows`` are the rows of ``X``
    the anchors were drawn from, whose self-distances are skipped), then turned into
    exp(−d²/2σ²) in place, so the n × m distances are computed once and no second n × m
    array is allocated.
    """
    out = np.empty((len(X), len(anchors)), dtype=np.float32)
    shifted = _shifted_anchors(anchors)
    total = 0.0
    for start in range(0, len(X), block_size):
        d2 = _squared_distances(X[start : start + block_size], *shifted)
        nearest = _nearest_other(d2, start, anchor_rows)
        total += float(np.sqrt(nearest, dtype=np.float64).sum())
        out[start : start + block_size] = d2
    sigma = _check_sigma(total / len(X))
    for start in range(0, len(X), block_size):
        _exp_block(out[start : start + block_size], sigma, None)
    return out, sigma


def _check_sigma(sigma: float) -> float:
    if not sigma > 0:
        raise HashlearnInputError(
            "every training sample coincides with an anchor (RBF width 0); the features may be "
            "constant or duplicated — use more varied data or fewer anchors."
        )
    return sigma


def select_anchors(
    X: np.ndarray, n_anchors: int, method: str, random_state: Any, kmeans_iter: int = 10
) -> tuple[np.ndarray, np.ndarray | None]:
    """m anchors (float64) from the rows of ``X``: a seeded random sample or k-means centres.

    Returns the anchors and, for a random sample, the rows of ``X`` they are (else ``None``).
    """
    if n_anchors > len(X):
        raise HashlearnInputError(
            f"n_anchors={n_anchors} is more than the {len(X)} training samples; "
            f"use n_anchors <= {len(X)}."
        )
    rng = check_random_state(random_state)
    if method == "random":
        rows = np.sort(rng.choice(len(X), n_anchors, replace=False))
        return X[rows].astype(np.float64), rows
    from sklearn.cluster import KMeans

    n_fit = min(len(X), 20 * n_anchors)
    sample = X[np.sort(rng.choice(len(X), n_fit, replace=False))].astype(np.float64)
    km = KMeans(
        n_clusters=n_anchors,
        n_init=1,
        max_iter=kmeans_iter,
        random_state=rng.randint(2**31 - 1),
    )
    return km.fit(sample).cluster_centers_, None


def nearest_anchor_sigma(
    X: np.ndarray,
    anchors: np.ndarray,
    block_size: int = 4096,
    anchor_rows: np.ndarray | None = None,
) -> float:
    """σ = mean distance from each row of ``X`` to its nearest anchor (blocked); rows listed
    in ``anchor_rows`` are measured to their nearest other anchor."""
    shifted = _shifted_anchors(anchors)
    total = 0.0
    for start in range(0, len(X), block_size):
        d2 = _squared_distances(X[start : start + block_size], *shifted)
        total += float(np.sqrt(_nearest_other(d2, start, anchor_rows), dtype=np.float64).sum())
    return _check_sigma(total / len(X))


def ridge_projection(
    Phi: np.ndarray, targets: np.ndarray, reg: float, gram: np.ndarray | None = None
) -> np.ndarray:
    """Ψ = argmin ‖B − Ψᵀ φ(X)‖² + reg ‖Ψ‖² = (ΦᵀΦ + reg I)⁻¹ Φᵀ B (SSAH chapter §2.2.4).

    ``Phi`` is sample-major (n, m), ``targets`` (n, l); ``gram`` = ΦᵀΦ may be passed in.
    """
    if gram is None:
        gram = feature_gram(Phi)
    rhs = (Phi.T @ targets.astype(np.float32)).astype(np.float64)
    lhs = gram + reg * np.eye(len(gram))
    return linalg.solve(lhs, rhs, assume_a="pos")


def feature_gram(Phi: np.ndarray) -> np.ndarray:
    """ΦᵀΦ (m, m) in float64 (accumulated by float32 BLAS on the n × m features)."""
    return (Phi.T @ Phi).astype(np.float64)


class AnchorRBF(ParameterChecksMixin, TransformerMixin, BaseEstimator):
    """Anchor RBF feature map, a scikit-learn transformer.

    Args:
        n_anchors: number of anchors m (at most the number of training samples).
        anchors: ``"random"`` (seeded sample of training points, the SSAH chapter's choice)
            or ``"kmeans"`` (seeded k-means centres).
        center: subtract the training mean of φ.
        block_size: rows per block when computing distances.
        kmeans_iter: Lloyd iterations for ``anchors="kmeans"``.
        random_state: seed.
    """

    _parameter_constraints: dict = {
        "n_anchors": [POSITIVE_INT],
        "anchors": [StrOptions({"random", "kmeans"})],
        "center": ["boolean"],
        "block_size": [POSITIVE_INT],
        "kmeans_iter": [POSITIVE_INT],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_anchors: int = 1000,
        anchors: str = "random",
        center: bool = True,
        block_size: int = 4096,
        kmeans_iter: int = 10,
        random_state: Any = None,
    ):
        self.n_anchors = n_anchors
        self.anchors = anchors
        self.center = center
        self.block_size = block_size
        self.kmeans_iter = kmeans_iter
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Learn anchors, σ and the mean; return the centred training features (n, m)."""
        X = check_features(X, "X", estimator=self)
        self.anchors_, rows = select_anchors(
            X, self.n_anchors, self.anchors, self.random_state, self.kmeans_iter
        )
        Phi, self.sigma_ = fit_rbf_features(X, self.anchors_, self.block_size, rows)
        self.mean_ = Phi.mean(axis=0, dtype=np.float64) if self.center else np.zeros(Phi.shape[1])
        Phi -= self.mean_.astype(np.float32)
        return Phi

    def fit(self, X: Any, y: Any = None) -> AnchorRBF:
        """Learn anchors, σ and the feature mean from ``X``."""
        self.fit_transform(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Centred features φ(X) − mean (n, m), float32."""
        check_is_fitted(self)
        X = check_features(X, "X", estimator=self, reset=False)
        return rbf_features(X, self.anchors_, self.sigma_, self.mean_, self.block_size)


class KernelHashing(SupervisedMixin, BaseHasher):
    """Base of the kernel-feature supervised hashers (SSAH, SDH, FSDH).

    They all map x to centred anchor RBF features φ(x) and hash with a linear projection,
    code(x) = sgn(Ψᵀ φ(x)); only how Ψ and the training codes are learnt differs. Learned
    state lives in plain-array attributes (``anchors_``, ``sigma_``, ``kernel_mean_``,
    ``projection_``) so :meth:`~hashlearn.base.BaseHasher.save` / ``load`` work unchanged.

    Subclasses set ``__init__`` parameters ``n_bits``, ``n_anchors``, ``anchors``,
    ``block_size``, ``blas_threads``, ``random_state``, ``verbose`` (and their own, added to
    ``_parameter_constraints``) and call :meth:`_prepare` in ``fit``.
    """

    _parameter_constraints: dict = {
        "n_bits": [POSITIVE_INT],
        "n_anchors": [POSITIVE_INT],
        "anchors": [StrOptions({"random", "kmeans"})],
        "block_size": [POSITIVE_INT],
        "blas_threads": [POSITIVE_INT, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def check_fit_shape(self, n_samples: int, n_features: int) -> None:
        """As :meth:`BaseHasher.check_fit_shape`, plus the anchor limits of :meth:`_prepare`."""
        super().check_fit_shape(n_samples, n_features)
        self._check_anchor_counts(n_samples)

    def _check_anchor_counts(self, n_samples: int) -> None:
        """``n_bits <= n_anchors <= n_samples`` (the rows the anchors are drawn from)."""
        if self.n_bits > self.n_anchors:
            raise HashlearnInputError(
                f"n_bits={self.n_bits} exceeds n_anchors={self.n_anchors}; the codes are a "
                "projection of the anchor features, so use n_anchors >= n_bits."
            )
        if self.n_anchors > n_samples:
            raise HashlearnInputError(
                f"n_anchors={self.n_anchors} is more than the {n_samples} training samples; "
                f"use n_anchors <= {n_samples}."
            )

    def _prepare(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate inputs, learn the kernel map; return (Φ centred (n, m), ΦᵀΦ, Y multi-hot)."""
        X, Y = self._check_X_y(X, y)
        check_magnitude(X, type(self).__name__)
        self._check_anchor_counts(len(X))
        rbf = AnchorRBF(
            n_anchors=self.n_anchors,
            anchors=self.anchors,
            block_size=self.block_size,
            random_state=self.random_state,
        )
        Phi = rbf.fit_transform(X)
        self.anchors_, self.sigma_, self.kernel_mean_ = rbf.anchors_, rbf.sigma_, rbf.mean_
        self.n_bits_ = int(self.n_bits)
        self.n_classes_ = Y.shape[1]
        return Phi, feature_gram(Phi), Y

    @limit_blas_threads
    def _project(self, X: np.ndarray) -> np.ndarray:
        Phi = rbf_features(X, self.anchors_, self.sigma_, self.kernel_mean_, self.block_size)
        return rowwise_matmul(Phi, self.projection_)
