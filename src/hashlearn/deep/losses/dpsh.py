"""DPSH: Deep Supervised Hashing with Pairwise Labels (Li, Wang & Kang, IJCAI 2016)."""

from __future__ import annotations

from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.losses.base import (
    HashLoss,
    label_similarity,
    masked_mean,
    pair_mean,
    pairwise_logistic,
    register_loss,
)
from hashlearn.deep.losses.memory import PAIR_MODES, PairMemory


@register_loss("dpsh")
class DPSHLoss(HashLoss):
    """Pairwise logistic likelihood on inner products (DPSH eq. 3).

    With ``Θ_ij = ½ u_iᵀ u_j`` the negative log-likelihood of the pair labels is
    ``L = mean [log(1 + e^{Θ_ij}) - s_ij Θ_ij]`` over the pairs ``i ≠ j``.  ``pairs="memory"``
    (default): as in the paper (pairs over the whole training set) and the authors' code
    (``DPSH_pytorch``), every batch item is paired with the latest output of *every* training
    item seen so far (:class:`~hashlearn.deep.losses.memory.PairMemory`, updated with each
    batch; needs ``n_train`` and the batch ``indices``; a call without ``indices`` uses the
    batch's own pairs).  ``pairs="batch"``: only the pairs inside the batch.  The mean runs
    over filled memory rows (the authors' code also averages over rows not yet filled, which
    only shrinks the first epoch's gradients).

    Own quantization term (eq. 4): ``mean (u - sgn u)²``, η = 0.1 on the per-entry mean.
    Expects linear codes (``activation = "identity"``).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        scale: the factor in ``Θ = scale · uᵀv`` (½ in the paper).
        pairs: ``"memory"`` or ``"batch"``.
    """

    activation = "identity"
    default_quantization_weight = 0.1

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        scale: float = 0.5,
        pairs: str = "memory",
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.scale = float(scale)
        self.pairs = check_choice(pairs, PAIR_MODES, "pairs")
        self.memory = None
        if self.pairs == "memory" and self.n_train is not None:
            self.memory = PairMemory(self.n_train, self.n_bits, self.n_classes)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        if self.pairs == "batch" or indices is None:
            theta = self.scale * codes @ codes.T
            return pair_mean(pairwise_logistic(theta, label_similarity(labels)))
        if self.memory is None:
            raise HashlearnInputError(
                f"{type(self).__name__}(pairs='memory') pairs the batch with every training "
                "item and needs n_train (the training split's size); pass n_train=... or "
                "pairs='batch'."
            )
        self.memory.check_indices(indices, type(self).__name__)
        theta, similarity, mask = self.memory.pair_products(codes, labels, indices)
        return masked_mean(pairwise_logistic(self.scale * theta, similarity), mask)
