"""HyP² Loss: Beyond Hypersphere Metric Space for Multi-label Image Retrieval.

Xu, Chai, Xu, Yuan, Fan & Wang, ACM MM 2022.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashlearn._validation import check_choice
from hashlearn.deep.losses.base import (
    HashLoss,
    cosine_matrix,
    label_similarity,
    masked_mean,
    off_diagonal,
    register_loss,
)


def welch_bound(n_points: int, dim: int) -> float:
    """Smallest possible largest |cosine| among ``n_points`` unit vectors in ``dim`` dimensions."""
    if n_points <= dim:
        return 0.0
    return math.sqrt((n_points - dim) / (dim * (n_points - 1)))


@register_loss("hyp2")
class HyP2Loss(HashLoss):
    """Hybrid proxy-pair loss with one learnable proxy per class (HyP² eq. 4-8).

    With ``c_ic = cos(u_i, p_c)``: the proxy term pulls each item towards the proxies of its
    labels and pushes it beyond a cosine threshold ζ from the others,
    ``mean_{y_ic=1} (1 - c_ic) + mean_{y_ic=0} max(0, c_ic - ζ)``; the pair term adds, for
    items with more than one label, ``β · mean max(0, cos(u_i, u_j) - ζ)`` over their pairs
    that share no label (the data-to-data correlations proxies cannot express).  On
    single-label data the pair term is zero.  HyP² has no quantization term of its own
    (``default_quantization_weight = 0``; use HSWD or H²Q).  Expects linear codes.

    The proxies are parameters of this module: the optimizer must include them, e.g.
    ``Adam(list(model.parameters()) + list(loss.parameters()))``, and checkpoints must save
    ``loss.state_dict()``.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss` (``random_state``
            seeds the proxies).
        beta: weight β of the pair term (0.5 in the authors' code).
        threshold: ζ, the cosine margin of dissimilar pairs and of the other classes'
            proxies: 0.1 by default, as the H²Q authors ran HyP² (their public code,
            ``src/utils/losses.py``); ``"welch"``: the Welch bound for ``2^⌈log2 C⌉`` points in
            ``k`` dimensions (HyP²'s own authors read ζ from a table of codes of that size; the
            bound is our stand-in for that table).
    """

    activation = "identity"
    default_quantization_weight = 0.0

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        beta: float = 0.5,
        threshold: float | str = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.beta = float(beta)
        points = 2 ** math.ceil(math.log2(max(self.n_classes, 2)))
        if isinstance(threshold, str):
            check_choice(threshold, ("welch",), "HyP² threshold (a number or 'welch')")
            self.threshold = welch_bound(points, self.n_bits)
        else:
            self.threshold = float(threshold)
        std = math.sqrt(2.0 / self.n_classes)  # Kaiming normal, fan_out = n_classes
        init = torch.randn(self.n_classes, self.n_bits, generator=self.make_generator()) * std
        self.proxies = torch.nn.Parameter(init)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        cos = cosine_matrix(codes, self.proxies.to(codes.dtype))
        positive = labels > 0
        loss = masked_mean(1.0 - cos, positive) + masked_mean(
            torch.relu(cos - self.threshold), ~positive
        )
        if self.beta > 0:
            multi = labels.sum(dim=1) > 1
            pairs = (
                off_diagonal(len(codes), codes.device)
                & (label_similarity(labels) == 0)
                & multi[:, None]
                & multi[None, :]
            )
            loss = loss + self.beta * masked_mean(
                torch.relu(cosine_matrix(codes) - self.threshold), pairs
            )
        return loss

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
