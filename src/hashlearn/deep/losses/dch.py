"""DCH: Deep Cauchy Hashing for Hamming Space Retrieval (Cao, Long, Liu & Wang, CVPR 2018)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashlearn.deep.losses.base import (
    HashLoss,
    balanced_pair_mean,
    cosine_matrix,
    label_similarity,
    register_loss,
)


@register_loss("dch")
class DCHLoss(HashLoss):
    """Cauchy cross-entropy on normalised Hamming distances (DCH eq. 6-9).

    ``d(h_i, h_j) = k/2 · (1 - cos(h_i, h_j))`` and ``P(s_ij = 1) = γ / (γ + d)``, so the
    pair loss is ``s log(d/γ) + log(1 + γ/d) = log(d + γ) - s log γ - (1 - s) log d``
    (the rewritten form is finite for similar pairs at ``d = 0``).  Pairs are weighted as in
    HashNet (class-balanced mean).  Own quantization term (eq. 10): the Cauchy quantization
    loss ``mean_i log(1 + d(|h_i|, 1)/γ)``, λ = 0.1.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        gamma: Cauchy scale γ (20 in the authors' code).
        eps: floor of ``d`` for dissimilar pairs.
    """

    activation = "tanh"
    default_quantization_weight = 0.1

    def __init__(
        self, n_bits: int, n_classes: int, *, gamma: float = 20.0, eps: float = 1e-6, **kwargs
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.gamma = float(gamma)
        self.eps = float(eps)

    def distance(self, cosine: Tensor) -> Tensor:
        return 0.5 * self.n_bits * (1.0 - cosine)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        d = self.distance(cosine_matrix(codes)).clamp_min(0.0)
        pair = (
            torch.log(d + self.gamma)
            - similarity * math.log(self.gamma)
            - (1.0 - similarity) * torch.log(d.clamp_min(self.eps))
        )
        return balanced_pair_mean(pair, similarity)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        abs_codes = codes.abs()
        cosine = abs_codes.sum(dim=1) / (abs_codes.norm(dim=1).clamp_min(1e-8) * self.n_bits**0.5)
        return torch.log1p(self.distance(cosine) / self.gamma).mean()
