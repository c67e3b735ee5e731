"""DPSH: Deep Supervised Hashing with Pairwise Labels (Li, Wang & Kang, IJCAI 2016)."""

from __future__ import annotations

from torch import Tensor

from hashlearn.deep.losses.base import (
    HashLoss,
    label_similarity,
    pair_mean,
    pairwise_logistic,
    register_loss,
)


@register_loss("dpsh")
class DPSHLoss(HashLoss):
    """Pairwise logistic likelihood on inner products (DPSH eq. 3).

    With ``Θ_ij = ½ u_iᵀ u_j`` the negative log-likelihood of the pair labels is
    ``L = mean_{i≠j} [log(1 + e^{Θ_ij}) - s_ij Θ_ij]``.  Pairs are taken inside the batch.
    Own quantization term (eq. 4): ``mean (u - sgn u)²`` (η = 0.1 on the per-entry mean).
    Expects linear codes (``activation = "identity"``).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        scale: the factor in ``Θ = scale · uᵀv`` (½ in the paper).
    """

    activation = "identity"
    default_quantization_weight = 0.1

    def __init__(self, n_bits: int, n_classes: int, *, scale: float = 0.5, **kwargs) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.scale = float(scale)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        theta = self.scale * codes @ codes.T
        return pair_mean(pairwise_logistic(theta, label_similarity(labels)))
