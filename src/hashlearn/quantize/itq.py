"""Iterative quantization (ITQ; Gong & Lazebnik, CVPR 2011 / TPAMI 2013).

Minimises the quantization loss ``‖B − V R‖²_F`` over codes ``B ∈ {±1}^{n×k}`` and orthogonal
``R`` by alternating its two exact block minimisers (TPAMI eq. 2):

- fix ``R``: ``B = sgn(V R)``;
- fix ``B``: the orthogonal Procrustes problem, solved by the SVD ``Vᵀ B = U Σ Wᵀ`` and
  ``R = U Wᵀ``. (The transposed solution ``W Uᵀ``, found in some public baselines, is not a
  minimiser and makes the loss go up.)

Each step can only lower the loss, so ``loss_curve_`` never increases; iteration stops early at
a fixed point (the signs stop changing, after which ``R`` cannot change either).
"""

from __future__ import annotations

import numpy as np

from hashlearn._linalg import itq, random_orthogonal
from hashlearn.base import NON_NEGATIVE_INT
from hashlearn.quantize.losses import quantization_loss
from hashlearn.quantize.rotation import RotationQuantizer
from hashlearn.quantize.sign import SignQuantizer
from hashlearn.registry import register_method


@register_method("itq")
class ITQ(RotationQuantizer):
    """PCA to ``n_bits`` dimensions, then the ITQ rotation from a seeded random start.

    Args:
        n_bits: code length (default: the input dimension; then no PCA precedes the rotation).
        n_iter: alternating iterations (the paper uses 50).
        center: subtract the training mean when no PCA precedes the rotation (PCA always centres).
            ``False`` quantizes the features as given, e.g. embeddings already normalised for H²Q.
        random_state: seed of the initial random rotation.
        verbose: show a progress bar on stderr.

    Attributes:
        rotation_: the learned k × k orthogonal matrix.
        mean_, components_: the PCA projection (``None`` when none precedes the rotation).
        loss_curve_: ``‖sgn(V R) − V R‖² / (n k)`` at the start and after every iteration.
        n_iter_: iterations run.
    """

    rescale_rows = False
    _parameter_constraints: dict = {
        **{key: SignQuantizer._parameter_constraints[key] for key in ("n_bits", "center")},
        "n_iter": [NON_NEGATIVE_INT],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_bits: int | None = None,
        n_iter: int = 50,
        center: bool = True,
        random_state: int | None = None,
        verbose: bool = False,
    ):
        self.n_bits = n_bits
        self.n_iter = n_iter
        self.center = center
        self.random_state = random_state
        self.verbose = verbose

    def _center_unprojected(self) -> bool:
        return bool(self.center)

    def _fit_rotation(
        self, V: np.ndarray, rng: np.random.RandomState, Z_val: np.ndarray | None = None
    ) -> np.ndarray:
        R = random_orthogonal(V.shape[1], rng)
        self.loss_curve_ = [quantization_loss(V @ R.astype(V.dtype), "l2")]
        R, self.n_iter_ = itq(
            V,
            R,
            self.n_iter,
            on_iteration=lambda Y: self.loss_curve_.append(quantization_loss(Y, "l2")),
            progress=self.verbose,
        )
        return R
