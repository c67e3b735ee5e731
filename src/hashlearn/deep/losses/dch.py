"""DCH: Deep Cauchy Hashing for Hamming Space Retrieval (Cao, Long, Liu & Wang, CVPR 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn._validation import check_choice
from hashlearn.deep.losses.base import (
    HashLoss,
    class_balanced_sum,
    cosine_matrix,
    label_similarity,
    register_loss,
    similar_pair_share,
)

#: Cauchy scale γ of each variant (see :class:`DCHLoss`).
GAMMAS = {"h2q": 10.0, "hswd": 20.0}


@register_loss("dch")
class DCHLoss(HashLoss):
    """Cauchy cross-entropy on normalised Hamming distances (DCH eq. 6-9).

    ``d(h_i, h_j) = k/2 · (1 - cos(h_i, h_j))`` (floored, see below) and
    ``P(s_ij = 1) = γ / (γ + d)``, so the pair loss is ``s log(d/γ) + log(1 + γ/d)``.  Pairs are
    weighted ``w = s / p + (1 - s) / (1 - p)`` and averaged (:func:`class_balanced_sum`): the
    mean over similar pairs *plus* the mean over dissimilar pairs, as both authors' codes do (an
    earlier version averaged the two, which halved the loss and doubled the effective weight of
    the quantization term).  Own quantization term (eq. 10): the Cauchy quantization loss
    ``mean_i log(1 + d(|h_i|, 1)/γ)``, λ = 0.1.

    ``variant`` picks the code whose table is reproduced (the recipes of
    :data:`hashlearn.deep.config.RECIPES` choose theirs):

    * ``"h2q"``: Lucas-Schwengber/h2q ``src/utils/losses.py`` ``DCH``: γ = 10,
      ``d = k (ε + (1 - c)/2 · (1 - 2ε))`` with ε = 1e-5, ``p`` the share of similar pairs in
      the whole training set (:meth:`set_training_labels`; the batch's before).
    * ``"hswd"`` (default): swuxyj/DeepHash-pytorch ``DCH.py``, on which the HSWD code builds:
      γ = 20, ``d = k/2 · (1 - min(c, 0.99))`` with the norms' product floored at 1e-4,
      ``p`` the batch's share.

    Pairs ``(i, i)`` are left out (our convention; both codes average over the full ``B × B``
    matrix, where those pairs add about ``1 / B`` of near-zero terms).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        variant: ``"h2q"`` or ``"hswd"``.
        gamma: Cauchy scale γ (None: the variant's, 10 or 20).
    """

    activation = "tanh"
    default_quantization_weight = 0.1

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        variant: str = "hswd",
        gamma: float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.variant = check_choice(variant, tuple(GAMMAS), "DCH variant")
        self.gamma = GAMMAS[variant] if gamma is None else float(gamma)
        self.similar_share: float | None = None

    def set_training_labels(self, labels: Tensor) -> None:
        """Record the training set's share of similar pairs (the ``h2q`` variant's ``p``)."""
        if self.variant == "h2q":
            self.similar_share = similar_pair_share(labels)

    def distance(self, a: Tensor, b: Tensor | None = None) -> Tensor:
        """The variant's floored Hamming-distance estimate between the rows of ``a`` and ``b``."""
        k = self.n_bits
        if self.variant == "h2q":
            eps = 1e-5
            return k * (eps + (1.0 - cosine_matrix(a, b)) / 2.0 * (1.0 - 2.0 * eps))
        b = a if b is None else b
        norms = a.norm(dim=1, keepdim=True) @ b.norm(dim=1, keepdim=True).T
        cosine = (a @ b.T) / norms.clamp_min(1e-4)
        return (1.0 - cosine.clamp(max=0.99)) * k / 2.0

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        d = self.distance(codes)
        pair = similarity * torch.log(d / self.gamma) + torch.log1p(self.gamma / d)
        return class_balanced_sum(pair, similarity, p=self.similar_share)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        ones = torch.ones(1, self.n_bits, dtype=codes.dtype, device=codes.device)
        return torch.log1p(self.distance(codes.abs(), ones)[:, 0] / self.gamma).mean()
