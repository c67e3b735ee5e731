"""DSH: Deep Supervised Hashing for Fast Image Retrieval (Liu, Wang, Shan & Chen, CVPR 2016)."""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn.deep.losses.base import HashLoss, label_similarity, pair_mean, register_loss


@register_loss("dsh")
class DSHLoss(HashLoss):
    """Contrastive loss on squared Euclidean distances (DSH eq. 3-4).

    With ``d²_ij = ‖u_i - u_j‖²``:
    ``L = mean_{i≠j} [½ s_ij d²_ij + ½ (1 - s_ij) max(0, m - d²_ij)]`` with margin ``m = 2k``:
    the paper's setting, and the H²Q authors' too (their ``DSH`` function in
    ``src/utils/losses.py`` defaults to 24, but ``src/models/QS/lightning_module.py`` passes
    ``separation=2 * number_of_bits``).  Euclidean distances are unchanged by a rotation of the
    codes, so the loss is rotation-invariant.

    Own quantization term: DSH's ℓ1 regulariser toward ±1, ``mean_i ‖ |u_i| - 1 ‖_1`` (summed
    over bits, averaged over items), weight α = 0.01 (the paper's α; the H²Q authors' code
    weights the same per-item mean by 0.01, while the paper's per-pair sum counts each item
    once per pair).  DSH's network emits linear codes (``activation = "identity"``).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        margin: ``m`` on squared distances; default ``2 * n_bits``.
    """

    activation = "identity"
    default_quantization_weight = 0.01

    def __init__(
        self, n_bits: int, n_classes: int, *, margin: float | None = None, **kwargs
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.margin = 2.0 * self.n_bits if margin is None else float(margin)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        similarity = label_similarity(labels)
        squared = (codes[:, None, :] - codes[None, :, :]).pow(2).sum(dim=2)
        pair = 0.5 * similarity * squared + 0.5 * (1.0 - similarity) * torch.relu(
            self.margin - squared
        )
        return pair_mean(pair)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return (codes.abs() - 1.0).abs().sum(dim=1).mean()
