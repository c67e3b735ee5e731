"""CEL: the pairwise cosine embedding loss of the H²Q paper's experiments.

Schwengber, Resende, Orenstein & Oliveira, "Deep Hashing via Householder Quantization",
arXiv 2311.04207 (the "CEL" rows), as ``torch.nn.CosineEmbeddingLoss`` on the pairs of a batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn.deep.losses.base import (
    HashLoss,
    cosine_matrix,
    label_similarity,
    pair_mean,
    register_loss,
)
from hashlearn.deep.losses.codetable import table_margin


@register_loss("cel")
class CELoss(HashLoss):
    """Cosine embedding loss over every pair ``i ≠ j`` of the batch.

    With ``c_ij = cos(u_i, u_j)`` and ``s_ij = 1`` when the items share a label:
    ``L = mean_{i≠j} [s_ij (1 - c_ij) + (1 - s_ij) max(0, c_ij - m)]`` — the formula of
    ``torch.nn.CosineEmbeddingLoss`` (target +1 for similar, -1 for dissimilar pairs, mean
    reduction), as the H²Q authors ran it (Lucas-Schwengber/h2q ``src/utils/losses.py``
    ``CEL``).  The margin ``m`` is theirs: the separation of their code table at
    ``[n_bits][⌈log2 n_classes⌉]`` (``src/models/QS/lightning_module.py`` reads
    ``data/codetable.csv``; :mod:`hashlearn.deep.losses.codetable`): for 10 classes 0 at
    16/32/48 bits and -0.03125 at 64.  (An earlier version used a fixed 0.1, the default of
    their function, which their training code never uses.)  Cosines do not change when every
    code is multiplied by the same orthogonal matrix, so the loss is rotation-invariant: the
    premise of two-stage H²Q.

    The authors' networks end in a plain linear hash layer, so the loss expects linear codes
    (``activation = "identity"``; cosines ignore the scale).  Its ``penalty`` is our choice, the
    paper names none: DPSH's ``mean (u - sgn u)²`` with λ = 0.1.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        margin: ``m``, the cosine dissimilar pairs are pushed below: ``"table"`` (default, the
            authors') or a number.
    """

    activation = "identity"
    default_quantization_weight = 0.1

    def __init__(
        self, n_bits: int, n_classes: int, *, margin: float | str = "table", **kwargs
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.margin = table_margin(margin, self.n_bits, self.n_classes)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        cosine = cosine_matrix(codes)
        pair = similarity * (1.0 - cosine) + (1.0 - similarity) * torch.relu(cosine - self.margin)
        return pair_mean(pair)
