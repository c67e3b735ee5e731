"""OrthoHash: cosine cross-entropy to fixed binary targets.

Hoe, Ng, Zhang, Chan, Chan & Fan, "One Loss for All: Deep Hashing with a Single Cosine
Similarity based Learning Objective", NeurIPS 2021 (OrthoHash).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn.deep.losses.base import HashLoss, cosine_matrix, register_loss, soft_targets
from hashlearn.deep.losses.csq import hash_centers


@register_loss("orthohash")
class OrthoHashLoss(HashLoss):
    """Cross-entropy over scaled cosines to one binary orthogonal target per class (OrthoHash).

    ``logit_ic = s · (cos(u_i, o_c) - m · y_ic)`` with ``o_c`` the class's ±1 target code
    (Hadamard rows, or random balanced codes, exactly as the CSQ centres), scale ``s`` and
    additive cosine margin ``m`` on the true classes; the loss is the cross-entropy with the
    label set normalised to sum one (one-hot: the usual cross-entropy).  Maximising the cosine
    to a binary code is itself a quantization objective, so the method has no separate term
    (``default_quantization_weight = 0``).  Expects linear codes (the paper puts a BatchNorm
    before the loss; that belongs to the model).  Not the H²Q paper's "CEL", which is the
    pairwise cosine embedding loss (:mod:`hashlearn.deep.losses.cel`).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        scale: logit scale ``s`` (8 in the paper).
        margin: cosine margin ``m`` (0.2 in the paper).
        centers: target scheme, as for CSQ ("auto", "hadamard", "random").
    """

    activation = "identity"
    rotation_invariant = False  # see HashLoss
    default_quantization_weight = 0.0

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        scale: float = 8.0,
        margin: float = 0.2,
        centers: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.scale, self.margin = float(scale), float(margin)
        table = hash_centers(self.n_classes, self.n_bits, centers, self.random_state)
        self.register_buffer("targets", torch.from_numpy(table))

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        positive = (labels > 0).to(codes.dtype)
        logits = self.scale * (
            cosine_matrix(codes, self.targets.to(codes.dtype)) - self.margin * positive
        )
        return -(soft_targets(labels) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
