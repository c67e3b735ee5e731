"""SDH and FSDH: discrete hashing by regression between labels and codes on anchor features.

Both minimise, over codes B ∈ {−1, 1}^{n×l}, a label-regression matrix W and the hash
projection P (sample-major, F(X) = φ(X) P):

- SDH (Shen, Shen, Liu, Shen, CVPR 2015, §3):
  ‖Y − B W‖² + λ‖W‖² + ν‖B − φ(X)P‖², W (l × c); the B-step is solved bit by bit by
  discrete cyclic coordinate descent (DCC).
- FSDH (Gui, Liu, Sun, Tao, Tan, IEEE TPAMI 2018): the regression is reversed,
  ‖B − Y W‖² + λ‖W‖² + ν‖B − φ(X)P‖², W (c × l), so the B-step has the closed form
  B = sgn(Y W + ν φ(X) P) and needs no DCC.

The F-step is the ridge regression P = (φᵀφ + δ I)⁻¹ φᵀ B for both (it minimises
ν‖B − φ(X)P‖² + νδ‖P‖², the term ``objective_`` includes, so every step is exact and
``objective_`` never increases); the
defaults λ = 1, ν = 1e-5, δ = 1e-2, 5 iterations follow the public SDH code
(recalled, not re-checked against it).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from hashlearn._linalg import sign
from hashlearn._threads import limit_blas_threads
from hashlearn.base import NON_NEGATIVE, POSITIVE, POSITIVE_INT
from hashlearn.registry import register_method
from hashlearn.shallow.kernel import KernelHashing, ridge_projection


def _ridge(X: np.ndarray, T: np.ndarray, lam: float) -> np.ndarray:
    """argmin_W ‖T − X W‖² + lam ‖W‖² for small X (n × k)."""
    return linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ T, assume_a="pos")


class DiscreteRegressionHashing(KernelHashing):
    """Shared alternating G-step / F-step / B-step loop of SDH and FSDH.

    Subclasses implement ``_g_step``, ``_b_step`` and ``_label_loss``.

    Args:
        n_bits: code length l. n_anchors, anchors, block_size: the kernel map
            (:class:`hashlearn.shallow.kernel.AnchorRBF`).
        lam: ridge weight λ on W. nu: weight ν of ‖B − F(X)‖². reg: ridge weight δ of the
            F-step. max_iter: outer iterations; tol: stop when the objective drops by less
            than ``tol`` relatively. random_state: seed (anchors, initial codes).
        blas_threads: BLAS threads during fit and transform (default 1; ``None``: library
            setting), see :func:`~hashlearn._threads.limit_blas_threads`.
        verbose: progress bar on stderr.

    Attributes:
        projection_: P (m × l). objective_: objective after each iteration. n_iter_.
    """

    _parameter_constraints: dict = {
        **KernelHashing._parameter_constraints,
        "lam": [POSITIVE],
        "nu": [POSITIVE],
        "reg": [POSITIVE],
        "max_iter": [POSITIVE_INT],
        "tol": [NON_NEGATIVE],
    }

    def __init__(
        self,
        n_bits: int = 32,
        n_anchors: int = 1000,
        anchors: str = "random",
        lam: float = 1.0,
        nu: float = 1e-5,
        reg: float = 1e-2,
        max_iter: int = 5,
        tol: float = 1e-6,
        block_size: int = 4096,
        blas_threads: int | None = 1,
        random_state: Any = None,
        verbose: bool = False,
    ):
        self.n_bits = n_bits
        self.n_anchors = n_anchors
        self.anchors = anchors
        self.lam = lam
        self.nu = nu
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol
        self.block_size = block_size
        self.blas_threads = blas_threads
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @limit_blas_threads
    def fit(self, X: Any, y: Any) -> DiscreteRegressionHashing:
        """Learn codes and the hash projection from features ``X`` and labels ``y``."""
        Phi, gram, Y = self._prepare(X, y)
        rng = check_random_state(self.random_state)
        B = sign(rng.standard_normal((len(Y), self.n_bits_)))
        P = ridge_projection(Phi, B, float(self.reg), gram)
        self.objective_, self.n_iter_ = [], 0
        name = type(self).__name__
        for _ in tqdm(range(self.max_iter), desc=name, disable=not self.verbose, file=sys.stderr):
            W = self._g_step(Y, B)
            F = (Phi @ P.astype(np.float32)).astype(np.float64)
            B = self._b_step(Y, W, F, B)
            P = ridge_projection(Phi, B, float(self.reg), gram)
            F = (Phi @ P.astype(np.float32)).astype(np.float64)
            value = (
                self._label_loss(Y, B, W)
                + self.lam * float((W * W).sum())
                + self.nu * float(((B - F) ** 2).sum())
                + self.nu * self.reg * float((P * P).sum())
            )
            self.objective_.append(value)
            self.n_iter_ += 1
            if len(self.objective_) > 1:
                previous = self.objective_[-2]
                if abs(previous - value) <= self.tol * abs(previous):
                    break
        self.projection_ = P
        return self

    def _g_step(self, Y: np.ndarray, B: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _b_step(self, Y, W, F, B) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _label_loss(self, Y, B, W) -> float:  # pragma: no cover
        raise NotImplementedError


@register_method("sdh")
class SDH(DiscreteRegressionHashing):
    """Supervised Discrete Hashing (Shen et al., CVPR 2015) with the ℓ2 G-step.

    ``dcc_iter`` bounds the DCC sweeps per B-step (each sweep updates every bit once).
    """

    dcc_iter = 10

    def _g_step(self, Y: np.ndarray, B: np.ndarray) -> np.ndarray:
        return _ridge(B, Y, float(self.lam))  # W = (BᵀB + λI)⁻¹ BᵀY

    def _b_step(self, Y, W, F, B) -> np.ndarray:
        # min_B ‖Y − BW‖² + ν‖B − F‖²: with Q = Y Wᵀ + ν F, bit k is
        # b_k = sgn(q_k − B_{−k} W_{−k} w_kᵀ); B W is updated incrementally.
        B = B.copy()
        Q = Y @ W.T + self.nu * F
        BW = B @ W
        for _ in range(self.dcc_iter):
            changed = 0
            for k in range(B.shape[1]):
                rest = BW - np.outer(B[:, k], W[k])
                new = sign(Q[:, k] - rest @ W[k])
                changed += int((new != B[:, k]).sum())
                B[:, k] = new
                BW = rest + np.outer(new, W[k])
            if changed == 0:
                break
        return B

    def _label_loss(self, Y, B, W) -> float:
        return float(((Y - B @ W) ** 2).sum())


@register_method("fsdh")
class FSDH(DiscreteRegressionHashing):
    """Fast Supervised Discrete Hashing (Gui et al., IEEE TPAMI 2018)."""

    def _g_step(self, Y: np.ndarray, B: np.ndarray) -> np.ndarray:
        return _ridge(Y, B, float(self.lam))  # W = (YᵀY + λI)⁻¹ YᵀB

    def _b_step(self, Y, W, F, B) -> np.ndarray:
        return sign(Y @ W + self.nu * F)  # closed-form B-step

    def _label_loss(self, Y, B, W) -> float:
        return float(((B - Y @ W) ** 2).sum())
