"""HyP² Loss: Beyond Hypersphere Metric Space for Multi-label Image Retrieval.

Xu, Chai, Xu, Yuan, Fan & Wang, ACM MM 2022.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hashlearn.deep.losses.base import (
    HashLoss,
    cosine_matrix,
    label_similarity,
    masked_mean,
    off_diagonal,
    register_loss,
)
from hashlearn.deep.losses.codetable import table_margin


def welch_bound(n_points: int, dim: int) -> float:
    """Smallest possible largest |cosine| among ``n_points`` unit vectors in ``dim`` dimensions."""
    if n_points <= dim:
        return 0.0
    return math.sqrt((n_points - dim) / (dim * (n_points - 1)))


@register_loss("hyp2")
class HyP2Loss(HashLoss):
    """Hybrid proxy-pair loss with one learnable proxy per class (HyP² eq. 4-8), as the H²Q
    authors ran it (Lucas-Schwengber/h2q ``src/utils/losses.py`` ``HyP2_pair`` /
    ``HyP2_proxy`` and ``src/models/QS/lightning_module.py``).

    With proxies ``p_c = tanh(P_c)`` of the learnable ``P`` and ``c_ic = cos(u_i, p_c)``: the
    proxy term pulls each item towards the proxies of its labels and pushes it beyond the
    threshold ζ from the others, ``mean_{y_ic=1} (1 - c_ic) + mean_{y_ic=0} max(0, c_ic - ζ)``
    (the authors write ``-c_ic``: the same gradient, 1 lower); the pair term is
    ``mean max(0, cos(u_i, u_j) - ζ)`` over *all* dissimilar pairs ``i ≠ j`` of the batch
    (an earlier version kept only pairs of multi-label items, so it vanished on single-label
    data); the loss is ``β · pair term + proxy term``.  HyP² has no quantization term of its
    own (``default_quantization_weight = 0``; use HSWD or H²Q).  Expects linear codes.

    The proxies are parameters of this module: the optimizer must include them, e.g.
    ``Adam(list(model.parameters()) + list(loss.parameters()))``, and checkpoints must save
    ``loss.state_dict()``.  The authors train them at a fixed learning rate of 1e-3 whatever the
    network's (:attr:`parameter_lr`, which the trainer honours).  Initialised Kaiming-normal with
    ``fan_out`` (std ``√(2 / C)``), as theirs.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss` (``random_state``
            seeds the proxies).
        beta: weight β of the pair term; the authors tune it over 0.5, 0.75, 1.0 and 1.25
            (their ``-penalty``, ``src/experiments/run_QS.sh``); default 0.5.
        threshold: ζ: ``"table"`` (default: the H²Q code table's separation at
            ``[n_bits][⌈log2 C⌉]``, :mod:`hashlearn.deep.losses.codetable`; 0 for 10 classes at
            16/32/48 bits, -0.03125 at 64), ``"welch"`` (the Welch bound for ``2^⌈log2 C⌉``
            points in ``k`` dimensions, our stand-in) or a number.
    """

    activation = "identity"
    default_quantization_weight = 0.0
    #: Learning rate of the proxies (Lucas-Schwengber/h2q ``lightning_module.py``).
    parameter_lr = 1e-3

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        beta: float = 0.5,
        threshold: float | str = "table",
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.beta = float(beta)
        if threshold == "welch":
            points = 2 ** math.ceil(math.log2(max(self.n_classes, 2)))
            self.threshold = welch_bound(points, self.n_bits)
        else:
            self.threshold = table_margin(threshold, self.n_bits, self.n_classes)
        std = math.sqrt(2.0 / self.n_classes)  # Kaiming normal, fan_out = n_classes
        init = torch.randn(self.n_classes, self.n_bits, generator=self.make_generator()) * std
        self.proxies = torch.nn.Parameter(init)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        cos = cosine_matrix(codes, torch.tanh(self.proxies.to(codes.dtype)))
        positive = labels > 0
        loss = masked_mean(1.0 - cos, positive) + masked_mean(
            torch.relu(cos - self.threshold), ~positive
        )
        if self.beta > 0:
            pairs = off_diagonal(len(codes), codes.device) & (label_similarity(labels) == 0)
            loss = loss + self.beta * masked_mean(
                torch.relu(cosine_matrix(codes) - self.threshold), pairs
            )
        return loss

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
