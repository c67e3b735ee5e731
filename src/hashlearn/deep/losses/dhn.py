"""DHN: Deep Hashing Network for Efficient Similarity Retrieval.

Zhu, Long, Wang & Cao, AAAI 2016.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from hashlearn.deep.losses.base import register_loss
from hashlearn.deep.losses.dpsh import DPSHLoss


@register_loss("dhn")
class DHNLoss(DPSHLoss):
    """Pairwise logistic likelihood on tanh codes with a smooth L1 quantization loss (DHN eq. 3-5).

    The similarity term is the pairwise cross-entropy of DPSH, ``log(1 + e^θ) - s θ`` with
    ``θ = scale · h_iᵀh_j`` (½ by default), on tanh codes.  DHN's own quantization term is
    the smooth L1 distance to the hypercube vertices, ``mean log cosh(|h| - 1)`` (eq. 4),
    λ = 0.1.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        scale: the factor in ``θ = scale · uᵀv``.
    """

    activation = "tanh"
    default_quantization_weight = 0.1

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        x = codes.abs() - 1.0
        # log cosh x = |x| + softplus(-2|x|) - log 2, stable for large |x|.
        return (x.abs() + F.softplus(-2.0 * x.abs()) - math.log(2.0)).mean()
