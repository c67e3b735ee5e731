"""GreedyHash: Towards Fast Optimization for Accurate Hash Coding in CNN.

Su, Zhang, Huang, Tian & Lin, NeurIPS 2018.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn.deep.losses.base import HashLoss, register_loss, soft_targets
from hashlearn.deep.signs import sign_ste


@register_loss("greedyhash")
class GreedyHashLoss(HashLoss):
    """Classification through the sign layer with a straight-through gradient (GreedyHash eq. 6-9).

    ``h = sgn(u)`` in the forward pass and ``∂L/∂u = ∂L/∂h`` in the backward pass; the loss is
    the cross-entropy of a linear classifier ``W h + c`` (multi-label targets are the label set
    normalised to sum one; one-hot targets give the usual cross-entropy).  Own quantization
    term: ``mean | |u| - 1 |³`` (eq. 9), λ = 0.1.  Expects linear codes (``activation =
    "identity"``): the sign is applied inside the loss, so quantization terms see ``u``.

    The classifier is a parameter of this module: the optimizer must include it, e.g.
    ``Adam(list(model.parameters()) + list(loss.parameters()))``, and checkpoints must save
    ``loss.state_dict()``.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss` (``random_state``
            seeds the classifier initialisation).
    """

    activation = "identity"
    rotation_invariant = False  # see HashLoss
    default_quantization_weight = 0.1

    def __init__(self, n_bits: int, n_classes: int, **kwargs) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.classifier = torch.nn.Linear(self.n_bits, self.n_classes)
        bound = self.n_bits**-0.5  # torch's default Linear init, drawn from a seeded generator
        gen = self.make_generator()
        with torch.no_grad():
            self.classifier.weight.copy_(
                (torch.rand(self.n_classes, self.n_bits, generator=gen) * 2 - 1) * bound
            )
            self.classifier.bias.copy_((torch.rand(self.n_classes, generator=gen) * 2 - 1) * bound)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        logits = self.classifier(sign_ste(codes))
        return -(soft_targets(labels) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return (codes.abs() - 1.0).abs().pow(3).mean()
