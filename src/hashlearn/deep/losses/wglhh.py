"""WGLHH: Weighted Gaussian Loss based Hamming Hashing (Tu, Mao, Kong et al., ACM MM 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashlearn.deep.losses.base import (
    HashLoss,
    class_balanced_sum,
    cosine_matrix,
    label_similarity,
    register_loss,
)


@register_loss("wglhh")
class WGLHHLoss(HashLoss):
    """Gaussian pair likelihood on Hamming distances, weighted towards badly-trained pairs.

    As the H²Q authors ran it (their public code, ``src/utils/losses.py``): with the
    Hamming-distance estimate ``d_ij = k (1 - c_ij) / 2`` (``c`` the cosine), ``x = α d²`` and
    ``e = exp(-x)`` (the Gaussian similarity probability), the pair loss is
    ``ℓ = (1 - s) e + s ((1 + e) log σ(x) - x e)`` — dissimilar pairs are pushed out of the
    Gaussian's Hamming ball, similar pairs pulled to distance 0 — weighted by the
    badly-trained-pair attention ``a = exp(|(c + 1)/2 - s|)`` and the class-balancing weights
    ``w = s / p + (1 - s) / (1 - p)`` (``p`` the batch's share of similar pairs):
    ``L = mean_{i≠j} w a ℓ``.  α = 0.1 as in that code.  Treating the attention as a
    constant in the gradient (a weight that selects pairs, not a term to minimise) is our
    choice; ``attention=False`` drops it.
    Own quantization term: ``mean (h - sgn h)²``, λ = 0.1.  Expects tanh codes.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        alpha: α in ``x = α d²`` (0.1).
        attention: weight pairs by ``a`` (False: ``a = 1``).
    """

    activation = "tanh"
    default_quantization_weight = 0.1

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        alpha: float = 0.1,
        attention: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.alpha = float(alpha)
        self.attention = bool(attention)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        cosine = cosine_matrix(codes)
        x = self.alpha * (0.5 * self.n_bits * (1.0 - cosine)).pow(2)
        e = torch.exp(-x)
        pair = (1.0 - similarity) * e + similarity * ((1.0 + e) * F.logsigmoid(x) - x * e)
        if self.attention:
            pair = pair * torch.exp(((cosine + 1.0) / 2.0 - similarity).abs()).detach()
        return class_balanced_sum(pair, similarity)
