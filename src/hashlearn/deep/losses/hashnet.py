"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang & Yu, ICCV 2017)."""

from __future__ import annotations

import math

from torch import Tensor

from hashlearn._validation import HashlearnInputError
from hashlearn.deep.losses.base import (
    HashLoss,
    balanced_pair_mean,
    label_similarity,
    pairwise_logistic,
    register_loss,
)


@register_loss("hashnet")
class HashNetLoss(HashLoss):
    """Weighted pairwise logistic likelihood with adaptive sigmoid (HashNet eq. 4-5).

    ``L = Σ_{i≠j} w_ij [log(1 + e^{α h_iᵀh_j}) - s_ij α h_iᵀh_j] / Σ w_ij`` with the class-balancing
    weights ``w_ij = |S|/|S_1|`` (similar) and ``|S|/|S_0|`` (dissimilar) computed on the batch.

    HashNet has no quantization penalty: it binarizes by *continuation* (Sec. 3.3), training on
    ``h = tanh(β a)`` for the hash layer's output ``a`` with β raised during training, so the
    codes approach ``sgn(a)``.  That is this method's ``penalty`` strategy
    (``continuation = True``: :func:`hashlearn.deep.quantization.get_quantization` returns a
    continuation term that scales the hash layer's output by :meth:`beta`); with
    ``quantization="none"`` β stays 1.  The schedule is the authors' code's
    (``network.py``: ``scale = init_scale · (1 + γ t)^power``, recomputed every ``step``
    iterations, t the 1-based iteration count): ``β_t = β_0 (1 + γ · step ⌊t / step⌋)^power``.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        alpha: adaptive-sigmoid factor α; default ``10 / n_bits`` (the authors' code).
        beta_init, beta_gamma, beta_power, beta_step: the continuation schedule
            (1, 0.005, 0.5 and 200 in the authors' code).
    """

    activation = "tanh"
    continuation = True
    default_quantization_weight = 0.0

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        alpha: float | None = None,
        beta_init: float = 1.0,
        beta_gamma: float = 0.005,
        beta_power: float = 0.5,
        beta_step: int = 200,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.alpha = 10.0 / self.n_bits if alpha is None else float(alpha)
        self.beta_init, self.beta_gamma = float(beta_init), float(beta_gamma)
        self.beta_power = float(beta_power)
        if isinstance(beta_step, bool) or not isinstance(beta_step, int) or beta_step < 1:
            raise HashlearnInputError(
                f"beta_step must be a positive integer (iterations), got {beta_step!r}."
            )
        if not (self.beta_init > 0 and self.beta_gamma >= 0 and math.isfinite(self.beta_power)):
            raise HashlearnInputError(
                "the continuation schedule needs beta_init > 0, beta_gamma >= 0 and a finite "
                f"beta_power, got {beta_init}, {beta_gamma}, {beta_power}."
            )
        self.beta_step = beta_step

    def beta(self, iteration: int) -> float:
        """β after ``iteration`` training steps (1-based, as the authors count)."""
        t = self.beta_step * (max(int(iteration), 0) // self.beta_step)
        return self.beta_init * (1.0 + self.beta_gamma * t) ** self.beta_power

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        theta = self.alpha * codes @ codes.T
        return balanced_pair_mean(pairwise_logistic(theta, similarity), similarity)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
