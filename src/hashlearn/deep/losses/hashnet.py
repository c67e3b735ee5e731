"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang & Yu, ICCV 2017)."""

from __future__ import annotations

from torch import Tensor

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
    HashNet has no quantization penalty: it binarizes by *continuation*, sharpening the tanh
    activation during training.  Continuation belongs to the model's activation, so here the
    method's own penalty is zero (``default_quantization_weight = 0``) and "penalty" equals
    "none" for HashNet; use HSWD, SWD or H²Q to quantize.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        alpha: adaptive-sigmoid factor α; default ``10 / n_bits`` (the authors' code).
    """

    activation = "tanh"
    default_quantization_weight = 0.0

    def __init__(
        self, n_bits: int, n_classes: int, *, alpha: float | None = None, **kwargs
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.alpha = 10.0 / self.n_bits if alpha is None else float(alpha)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        theta = self.alpha * codes @ codes.T
        return balanced_pair_mean(pairwise_logistic(theta, similarity), similarity)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
