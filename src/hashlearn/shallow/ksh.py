"""KSH: Kernel-Based Supervised Hashing (Liu, Wang, Ji, Jiang, Chang; CVPR 2012).

The SSAH chapter's kernel baseline (§2.2.1). On l labelled samples with centred anchor kernel
features K̄ (l × m, :mod:`hashlearn.shallow.kernel`) and pairwise labels S ∈ {1, −1}^{l×l}
(S_ij = 1 when i and j share a label), KSH fits r hash functions h_k(x) = sgn(k̄(x)ᵀ a_k) by
minimising the code inner-product loss (paper Eq. 4)

    Q = ‖H Hᵀ − r S‖²_F,   H = sgn(K̄ A) ∈ {−1, 1}^{l×r},

greedily, one bit at a time (Eq. 6–7): with the residue R_{k−1} = r S − Σ_{t<k} h_t h_tᵀ,
bit k minimises −sgn(K̄ a_k)ᵀ R_{k−1} sgn(K̄ a_k). Each bit is

1. initialised by the spectral relaxation (Eq. 9): the top generalised eigenvector of
   K̄ᵀ R_{k−1} K̄ a = λ K̄ᵀ K̄ a, scaled so that a ᵀ K̄ᵀ K̄ a = l;
2. refined by gradient descent on the sigmoid-smoothed objective (Eq. 10–11)
   Q̃(a) = −φ(K̄a)ᵀ R_{k−1} φ(K̄a), φ(x) = 2 / (1 + e^{−x}) − 1,
   ∇Q̃ = −K̄ᵀ((R_{k−1} b) ⊙ (1 − b ⊙ b)), b = φ(K̄a);
3. kept from step 2 unless the relaxed solution of step 1 gives the lower discrete loss, as
   the authors' code does.

Gradient descent is Nesterov-accelerated with Armijo back-tracking (the authors' code also
uses an accelerated method with a step search; our own step rule). S is never formed: items
are grouped by their distinct label sets, S = G M Gᵀ (G the n × u group indicator,
M = 2 [P Pᵀ > 0] − 1 for the u distinct label rows P), so R b costs O(l (u + k)).

Protocol (the paper's experiments): 1,000–2,000 labelled samples and m = 300 anchors;
``n_labeled`` draws that seeded subset from the training set (all of it when smaller). Our
choices: anchors are drawn from the labelled subset, and the kernel is the anchor RBF shared
with SSAH and SDH (σ = mean distance to the nearest anchor; the authors' code, as we recall
it, uses exp(−d² / 2σ) with σ the mean squared distance to the anchors), so that the methods
compare on the same features.
"""

from __future__ import annotations

import sys
from numbers import Integral
from typing import Any

import numpy as np
from scipy import linalg, sparse
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from tqdm.auto import tqdm

from hashlearn._threads import limit_blas_threads
from hashlearn._validation import HashlearnInputError
from hashlearn.base import NON_NEGATIVE, NON_NEGATIVE_INT
from hashlearn.registry import register_method
from hashlearn.shallow.kernel import KernelHashing


class _Residue:
    """R_{k−1} = r S − H Hᵀ as an operator: S = G M Gᵀ from the distinct label sets."""

    def __init__(self, Y: np.ndarray, n_bits: int):
        patterns, inverse = np.unique(Y, axis=0, return_inverse=True)
        self.group = inverse.reshape(-1)
        self.n_groups = len(patterns)
        self.Gt = sparse.csr_matrix(
            (np.ones(len(Y)), (self.group, np.arange(len(Y)))), shape=(len(patterns), len(Y))
        )
        self.M = n_bits * (2.0 * ((patterns @ patterns.T) > 0) - 1.0)
        self.H = np.empty((len(Y), 0))

    def apply(self, B: np.ndarray) -> np.ndarray:
        """R B for B (l,) or (l, j)."""
        return (self.M @ (self.Gt @ B))[self.group] - self.H @ (self.H.T @ B)


def _sigmoid_sign(x: np.ndarray) -> np.ndarray:
    return 2.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0))) - 1.0


def _smoothed(
    K: np.ndarray, res: _Residue, a: np.ndarray, gradient: bool = True
) -> tuple[float, np.ndarray | None]:
    """Q̃(a) (Eq. 10) and, if asked, its gradient (Eq. 11)."""
    b = _sigmoid_sign(K @ a.astype(K.dtype)).astype(np.float64)
    Rb = res.apply(b)
    value = -float(b @ Rb)
    if not gradient:
        return value, None
    return value, -(K.T @ (Rb * (1.0 - b * b)).astype(K.dtype)).astype(np.float64)


def _discrete(K: np.ndarray, res: _Residue, a: np.ndarray) -> tuple[float, np.ndarray]:
    h = np.where(K @ a.astype(K.dtype) >= 0, 1.0, -1.0)
    return -float(h @ res.apply(h)), h


def _descend(
    K: np.ndarray, res: _Residue, a: np.ndarray, n_iter: int, tol: float
) -> tuple[np.ndarray, int]:
    """Nesterov-accelerated gradient descent on Q̃ with Armijo back-tracking; returns the
    solution and the iterations run.

    Trial points are scored by value only; the momentum restarts whenever a step raises Q̃,
    so the accepted iterates never increase it.
    """
    f, g = _smoothed(K, res, a)
    step = 1.0 / max(float(np.linalg.norm(g)), 1e-12)
    prev, momentum, iterations = a, 1.0, 0
    for _ in range(n_iter):
        iterations += 1
        next_momentum = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
        if momentum == 1.0:  # no momentum: step from the iterate itself
            if g is None:
                g = _smoothed(K, res, a)[1]
            y, fy, gy = a, f, g
        else:
            y = a + ((momentum - 1.0) / next_momentum) * (a - prev)
            fy, gy = _smoothed(K, res, y)
        g_sq = float(gy @ gy)
        for _ in range(30):
            candidate = y - step * gy
            fc = _smoothed(K, res, candidate, gradient=False)[0]
            if fc <= fy - 0.5 * step * g_sq:
                break
            step *= 0.5
        else:
            break
        if fc > f:  # the momentum overshot: restart from the last iterate
            prev, momentum = a, 1.0
            continue
        done = f - fc <= tol * max(abs(f), 1.0)
        prev, a, f, momentum = a, candidate, fc, next_momentum
        g = None
        step *= 1.5
        if done:
            break
    return a, iterations


@register_method("ksh")
class KSH(KernelHashing):
    """Kernel-Based Supervised Hashing (Liu et al., CVPR 2012) on anchor RBF features.

    Args:
        n_bits: code length r (at most ``n_anchors``).
        n_anchors: anchors m (the paper: 300). anchors: ``"random"`` or ``"kmeans"``.
        n_labeled: labelled samples l used to fit (the paper labels 1,000–2,000); a seeded
            subset of the training set when it is larger.
        max_iter: gradient-descent iterations per bit (500 as in the authors' code, recalled,
            not re-checked against it).
        tol: stop a bit's descent when Q̃ drops by less than ``tol`` relatively.
        ridge: relative ridge added to K̄ᵀK̄ in the generalised eigenproblem (Eq. 9), which is
            singular when l < m or anchors repeat.
        block_size, blas_threads, random_state, verbose: as for :class:`~hashlearn.shallow.SSAH`.

    Attributes:
        anchors_, sigma_, kernel_mean_: the kernel map. projection_: A (m × r).
        objective_: Q = ‖H Hᵀ − r S‖² on the labelled subset after each bit.
        relaxed_bits_: the bits where the spectral initialisation beat gradient descent.
        n_iter_: the most descent iterations any bit ran.
    """

    _parameter_constraints: dict = {
        **KernelHashing._parameter_constraints,
        "n_labeled": [Interval(Integral, 2, None, closed="left")],
        "max_iter": [NON_NEGATIVE_INT],
        "tol": [NON_NEGATIVE],
        "ridge": [NON_NEGATIVE],
    }

    def __init__(
        self,
        n_bits: int = 32,
        n_anchors: int = 300,
        anchors: str = "random",
        n_labeled: int = 2000,
        max_iter: int = 500,
        tol: float = 1e-6,
        ridge: float = 1e-6,
        block_size: int = 4096,
        blas_threads: int | None = 1,
        random_state: Any = None,
        verbose: bool = False,
    ):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.anchors = anchors
        self.n_labeled = n_labeled
        self.max_iter = max_iter
        self.tol = tol
        self.ridge = ridge
        self.block_size = block_size
        self.blas_threads = blas_threads
        self.random_state = random_state
        self.verbose = verbose

    def check_fit_shape(self, n_samples: int, n_features: int) -> None:
        """As :meth:`KernelHashing.check_fit_shape`; the anchors come from the labelled subset."""
        super(KernelHashing, self).check_fit_shape(n_samples, n_features)
        self._check_labeled()
        self._check_anchor_counts(min(n_samples, self.n_labeled))

    def _check_labeled(self) -> None:
        if self.n_anchors > self.n_labeled:
            raise HashlearnInputError(
                f"n_anchors={self.n_anchors} exceeds n_labeled={self.n_labeled}; the anchors "
                "are drawn from the labelled subset, so use n_anchors <= n_labeled."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any) -> KSH:
        """Learn the r kernel hash functions from features ``X`` (n, d) and labels ``y``."""
        self._check_labeled()
        X, Y = self._check_X_y(X, y)
        if len(X) > self.n_labeled:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(len(X), self.n_labeled, replace=False))
            X, Y = X[rows], Y[rows]
        Phi, _, Y = self._prepare(X, Y)
        K = Phi  # float32: the descent's matrix-vector products dominate the cost
        n_bits, size = self.n_bits_, len(K)
        res = _Residue(Y, n_bits)
        gram = K.T.astype(np.float64) @ K.astype(np.float64)
        gram += (self.ridge * np.trace(gram) / len(gram) + 1e-12) * np.eye(len(gram))
        A = np.zeros((K.shape[1], n_bits))
        self.objective_, self.relaxed_bits_, self.n_iter_ = [], [], 0
        counts = np.bincount(res.group, minlength=res.n_groups).astype(np.float64)
        rs_norm_sq = float(counts @ (res.M**2) @ counts)  # ‖r S‖²
        bar = tqdm(range(n_bits), desc="KSH", disable=not self.verbose, file=sys.stderr)
        K64 = K.astype(np.float64)
        for k in bar:
            _, vecs = linalg.eigh(K64.T @ res.apply(K64), gram, subset_by_index=[len(gram) - 1] * 2)
            a0 = vecs[:, 0] * np.sqrt(size / max(float(vecs[:, 0] @ gram @ vecs[:, 0]), 1e-300))
            a, n_iter = _descend(K, res, a0, int(self.max_iter), float(self.tol))
            self.n_iter_ = max(self.n_iter_, n_iter)
            q_gd, h = _discrete(K, res, a)
            q_relaxed, h0 = _discrete(K, res, a0)
            if q_relaxed < q_gd:
                a, h = a0, h0
                self.relaxed_bits_.append(k)
            A[:, k] = a
            res.H = np.column_stack([res.H, h])
            # Q = ‖r S‖² − 2 tr(Hᵀ r S H) + ‖Hᵀ H‖², with r S H = R H + H Hᵀ H.
            HtH = res.H.T @ res.H
            rs_h = res.apply(res.H) + res.H @ HtH
            q = rs_norm_sq - 2.0 * float((res.H * rs_h).sum()) + float((HtH**2).sum())
            self.objective_.append(q)
        bar.close()
        self.projection_ = A
        return self
