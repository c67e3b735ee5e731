"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang & Yu, ICCV 2017)."""

from __future__ import annotations

import math

from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.losses.base import (
    HashLoss,
    class_balanced_sum,
    label_similarity,
    pairwise_logistic,
    register_loss,
    similar_pair_share,
)
from hashlearn.deep.losses.memory import PairMemory

#: The two ways the seed papers ran HashNet, by the paper whose table they produced:
#: α (None = 10 / k), pairs, continuation unit and step, whether the class weights use the
#: training set's share of similar pairs, and whether HSWD/SWD see the codes after tanh.
VARIANTS = {
    "h2q": {"alpha": None, "pairs": "batch", "beta_unit": "iteration", "beta_step": 200,
            "train_share": True, "quantize_codes": True},
    "hswd": {"alpha": 0.1, "pairs": "memory", "beta_unit": "epoch", "beta_step": 20,
             "train_share": False, "quantize_codes": False},
}  # fmt: skip
BETA_UNITS = ("iteration", "epoch")


@register_loss("hashnet")
class HashNetLoss(HashLoss):
    """Weighted pairwise logistic likelihood with adaptive sigmoid (HashNet eq. 4-5).

    Pair loss ``ℓ_ij = log(1 + e^{α h_iᵀh_j}) - s_ij α h_iᵀh_j``, weighted
    ``w = s / p + (1 - s) / (1 - p)`` and averaged over the pairs (:func:`class_balanced_sum`):
    the mean over similar pairs *plus* the mean over dissimilar pairs, as both authors' codes
    compute it (an earlier version averaged the two means, which halved the loss and doubled
    the effective weight of any added quantization term).

    HashNet binarises by *continuation* (Sec. 3.3): it trains on ``h = tanh(β a)`` for the hash
    layer's output ``a`` with β raised during training, so the codes approach ``sgn(a)``.
    :func:`hashlearn.deep.quantization.get_quantization` attaches that schedule (:meth:`beta`)
    to every strategy except ``none`` (β stays 1 there): ``penalty`` is the continuation alone,
    and ``hswd`` / ``swd`` add their term on top of it, as both seed papers' codes do.
    ``β = β_0 (1 + γ · step · ⌊n / step⌋)^power`` with ``n`` the 0-based iteration or epoch and
    ``γ = 1 / step`` by default, i.e. ``β = (1 + ⌊n / step⌋)^0.5``.

    Two papers ran this loss two ways; ``variant`` picks one (the recipes of
    :data:`hashlearn.deep.config.RECIPES` choose theirs):

    * ``"h2q"`` (default; Lucas-Schwengber/h2q ``src/utils/losses.py`` ``HashNet`` and
      ``src/models/QS/lightning_module.py``, which follow thuml/HashNet): α = 10 / k, in-batch
      pairs, ``p`` the share of similar pairs in the whole training set (given by
      :meth:`set_training_labels`; the batch's share before), β stepped every 200 iterations
      (their ``(1 + batch_iter // 200) ** 0.5``), HSWD on ``tanh(β a)``.
    * ``"hswd"`` (khoadoan106/single_loss_quantization ``python/HashNet.py``, as
      DeepHash-pytorch ``HashNet.py`` but with a memory): α = 0.1, every batch item paired with
      the latest output of every training item (:class:`PairMemory`; needs ``n_train`` and the
      batch ``indices``), weights ``|S| / |S_1|``, ``|S| / |S_0|`` over those pairs, β stepped
      every 20 epochs (their ``(epoch // step_continuation + 1) ** 0.5``), HSWD on ``a``.

    Our conventions kept in both: pairs ``(i, i)`` are left out, and the memory counts only
    rows filled so far (the HSWD code also counts its zero rows as dissimilar pairs during the
    first epoch).

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        variant: ``"h2q"`` or ``"hswd"`` (see above).
        alpha: adaptive-sigmoid factor α (None: the variant's).
        beta_init, beta_gamma, beta_power: the continuation schedule (1, 1 / step, 0.5).
        beta_step: iterations or epochs between two raises of β (None: the variant's).
        beta_unit: ``"iteration"`` or ``"epoch"`` (None: the variant's).
        pairs: ``"batch"`` or ``"memory"`` (None: the variant's).
    """

    activation = "tanh"
    continuation = True
    default_quantization_weight = 0.0

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        variant: str = "h2q",
        alpha: float | None = None,
        beta_init: float = 1.0,
        beta_gamma: float | None = None,
        beta_power: float = 0.5,
        beta_step: int | None = None,
        beta_unit: str | None = None,
        pairs: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.variant = check_choice(variant, tuple(VARIANTS), "HashNet variant")
        spec = VARIANTS[variant]
        alpha = spec["alpha"] if alpha is None else alpha
        self.alpha = 10.0 / self.n_bits if alpha is None else float(alpha)
        beta_step = spec["beta_step"] if beta_step is None else beta_step
        if isinstance(beta_step, bool) or not isinstance(beta_step, int) or beta_step < 1:
            raise HashlearnInputError(
                f"beta_step must be a positive integer (iterations or epochs), got {beta_step!r}."
            )
        self.beta_step = beta_step
        self.beta_unit = check_choice(beta_unit or spec["beta_unit"], BETA_UNITS, "beta_unit")
        self.beta_init = float(beta_init)
        self.beta_gamma = 1.0 / beta_step if beta_gamma is None else float(beta_gamma)
        self.beta_power = float(beta_power)
        if not (self.beta_init > 0 and self.beta_gamma >= 0 and math.isfinite(self.beta_power)):
            raise HashlearnInputError(
                "the continuation schedule needs beta_init > 0, beta_gamma >= 0 and a finite "
                f"beta_power, got {beta_init}, {beta_gamma}, {beta_power}."
            )
        self.pairs = check_choice(pairs or spec["pairs"], ("batch", "memory"), "pairs")
        self.train_share = spec["train_share"]
        self.quantize_codes = spec["quantize_codes"]
        self.similar_share: float | None = None
        self.memory = None
        if self.pairs == "memory" and self.n_train is not None:
            self.memory = PairMemory(self.n_train, self.n_bits, self.n_classes)

    def set_training_labels(self, labels: Tensor) -> None:
        """Record the training set's share of similar pairs (the ``h2q`` variant's ``p``)."""
        if self.train_share:
            self.similar_share = similar_pair_share(labels)

    def beta(self, iteration: int, epoch: int = 1) -> float:
        """β for the 1-based training ``iteration`` of the 1-based ``epoch``."""
        count = (epoch if self.beta_unit == "epoch" else iteration) - 1
        t = self.beta_step * (max(int(count), 0) // self.beta_step)
        return self.beta_init * (1.0 + self.beta_gamma * t) ** self.beta_power

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        if self.pairs == "memory" and indices is not None:
            if self.memory is None:
                raise HashlearnInputError(
                    "HashNetLoss(pairs='memory') pairs the batch with every training item and "
                    "needs n_train (the training split's size); pass n_train=... or "
                    "pairs='batch'."
                )
            self.memory.check_indices(indices, type(self).__name__)
            theta, similarity, mask = self.memory.pair_products(codes, labels, indices)
            values = pairwise_logistic(self.alpha * theta, similarity)
            return class_balanced_sum(values, similarity, mask)
        similarity = label_similarity(labels)
        values = pairwise_logistic(self.alpha * codes @ codes.T, similarity)
        return class_balanced_sum(values, similarity, p=self.similar_share)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0
