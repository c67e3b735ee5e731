"""Shared machinery of the deep hashing losses: input checks, pair similarities, reductions.

Modelled on pytorch-metric-learning: :class:`HashLoss` validates the batch once and computes
nothing else; each loss file only writes its formula with the helpers below, so a new loss is
one small file plus one ``@register_loss`` line.

Conventions used by every loss:

* ``codes`` is the ``(B, n_bits)`` output of the hash layer after the activation the loss asks
  for (class attribute ``activation``: ``"tanh"``, ``"identity"`` or ``"sign_ste"``).
* ``labels`` is ``(B, n_classes)`` multi-hot (single-label data as one-hot); 1-D integer class
  ids are accepted too and turned into one-hot.
* Two items are similar (``s_ij = 1``) when they share at least one label.
* Pairwise terms use the ``B(B-1)`` ordered pairs ``i != j`` of the batch; a batch of one item
  has no pairs and gives a zero loss (still connected to the graph).
* Sums in the papers become means (over pairs, items or entries) so that weights are
  comparable across batch sizes and code lengths.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice, check_n_bits
from hashlearn.deep.signs import ACTIVATIONS, sign_gap

_LOSSES: dict[str, type[HashLoss]] = {}


def register_loss(name: str):
    """Class decorator: make ``cls`` available as ``get_loss(name, ...)``."""

    def decorator(cls: type[HashLoss]) -> type[HashLoss]:
        if name in _LOSSES and _LOSSES[name] is not cls:
            raise RuntimeError(f"loss name {name!r} registered twice")
        check_choice(cls.activation, ACTIVATIONS, f"activation of {cls.__name__}")
        _LOSSES[name] = cls
        cls.loss_name = name
        return cls

    return decorator


# ----------------------------------------------------------------------------- helpers
def label_similarity(labels_a: Tensor, labels_b: Tensor | None = None) -> Tensor:
    """``S_ij = 1`` if items share at least one label, else 0 (dtype of ``labels_a``)."""
    labels_b = labels_a if labels_b is None else labels_b
    return (labels_a @ labels_b.T > 0).to(labels_a.dtype)


def off_diagonal(n: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``(n, n)`` mask of the pairs ``i != j``."""
    return ~torch.eye(n, dtype=torch.bool, device=device)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` is true; zero (with gradient) if the mask is empty."""
    count = mask.sum()
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / count.clamp_min(1).to(values.dtype)


def pair_mean(values: Tensor) -> Tensor:
    """Mean of a ``(B, B)`` matrix of pair losses over the pairs ``i != j``."""
    return masked_mean(values, off_diagonal(values.shape[0], values.device))


def balanced_pair_mean(values: Tensor, similarity: Tensor) -> Tensor:
    """Class-balanced mean over pairs ``i != j``: (mean over similar + mean over dissimilar) / 2.

    This is the weighted likelihood of HashNet (Cao et al., ICCV 2017, eq. 5) and DCH (Cao et
    al., CVPR 2018, eq. 4) with ``w_ij = |S| / |S_1|`` for similar and ``|S| / |S_0|`` for
    dissimilar pairs, normalised by ``Σ w_ij``.  When one kind of pair is absent from the batch
    it is the plain mean over the other kind.
    """
    pairs = off_diagonal(values.shape[0], values.device)
    similar = pairs & (similarity > 0)
    dissimilar = pairs & (similarity <= 0)
    parts = [masked_mean(values, m) for m in (similar, dissimilar) if bool(m.any())]
    if not parts:
        return values.sum() * 0.0
    return sum(parts) / len(parts)


def class_balanced_sum(
    values: Tensor, similarity: Tensor, mask: Tensor | None = None, p: float | None = None
) -> Tensor:
    """``mean_{(i,j) ∈ mask} w_ij v_ij`` with ``w = s / p + (1 - s) / (1 - p)``.

    ``mask`` defaults to the pairs ``i ≠ j`` of a square batch matrix.  With ``p = None`` the
    weights use the share of similar pairs among the masked ones, which makes the value the
    mean over similar pairs *plus* the mean over dissimilar pairs (a kind of pair that is
    absent contributes 0): the weighted likelihood of HashNet as DeepHash-pytorch
    (``HashNet.py``, ``DCH.py``) and the HSWD code (khoadoan106/single_loss_quantization
    ``python/HashNet.py``) compute it, ``Σ w v / Σ w`` with ``w = |S| / |S_1|``, ``|S| / |S_0|``.
    With a fixed ``p`` in (0, 1) (the H²Q authors pass the share of similar pairs in the whole
    training set, Lucas-Schwengber/h2q ``src/utils/datasets.py`` ``get_similar_probability``
    into ``src/utils/losses.py``) the weights are theirs.  Twice :func:`balanced_pair_mean`
    when both kinds are present and ``p`` is the batch's share.
    """
    if mask is None:
        mask = off_diagonal(values.shape[0], values.device)
    if p is not None and 0.0 < p < 1.0:
        weights = similarity / p + (1.0 - similarity) / (1.0 - p)
        return masked_mean(weights * values, mask)
    similar = mask & (similarity > 0)
    dissimilar = mask & (similarity <= 0)
    return masked_mean(values, similar) + masked_mean(values, dissimilar)


def similar_pair_share(labels: Tensor, chunk: int = 2048) -> float:
    """Share of similar pairs ``mean_{i,j} [y_i · y_j > 0]`` over all ``n²`` ordered pairs of
    ``labels`` (multi-hot, ``(n, C)``), as the H²Q authors compute it (Lucas-Schwengber/h2q
    ``src/utils/datasets.py`` ``get_similar_probability``, pairs ``(i, i)`` included).
    Single-label data takes the closed form ``Σ_c n_c² / n²``; multi-label data is counted in
    row blocks of ``chunk``."""
    labels = labels.detach().to(torch.float64)
    n = labels.shape[0]
    if n == 0:
        return 0.0
    if bool((labels.sum(dim=1) == 1).all()):
        counts = labels.sum(dim=0)
        return float((counts * counts).sum() / (n * n))
    total = 0
    for start in range(0, n, chunk):
        total += int((labels[start : start + chunk] @ labels.T > 0).sum())
    return total / (n * n)


def pairwise_logistic(theta: Tensor, similarity: Tensor) -> Tensor:
    """Negative log-likelihood of ``P(s_ij = 1) = σ(θ_ij)``: ``log(1 + e^θ) - s θ`` (stable)."""
    return F.softplus(theta) - similarity * theta


def cosine_matrix(a: Tensor, b: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Cosine similarities between the rows of ``a`` and ``b`` (``a`` if None)."""
    a_n = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b_n = a_n if b is None else b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a_n @ b_n.T


def soft_targets(labels: Tensor) -> Tensor:
    """Multi-hot rows normalised to sum one (one-hot rows are unchanged); empty rows stay 0."""
    return labels / labels.sum(dim=1, keepdim=True).clamp_min(1e-12)


# ----------------------------------------------------------------------------- base class
class HashLoss(torch.nn.Module):
    """Base class of the similarity losses (the quantization term is separate).

    ``loss(codes, labels, indices=None)`` returns the similarity loss of the batch as a scalar;
    ``quantization_penalty(codes)`` returns the method's own quantization term, unweighted (the
    trainer weights it by ``default_quantization_weight`` or a user λ through
    :func:`hashlearn.deep.quantization.get_quantization`).

    Args:
        n_bits: code length k.
        n_classes: number of label columns C.
        n_train: size of the training split (used by stateful losses with ``indices``;
            accepted and ignored by the others so a trainer can pass it to every loss).
        random_state: seed of any random initialisation the loss makes (hash centres,
            classifier weights, binary codes).

    Optional hooks a trainer calls when a loss defines them: ``set_training_labels(labels)``
    (all training labels, before the first batch), ``epoch_items(epoch)`` (the training
    positions to visit in a 1-based epoch; ``None`` = all) and ``on_epoch_end(embeddings,
    labels)`` (after every epoch, with every training item's embedding when the class attribute
    ``needs_epoch_embeddings`` is true, else ``None``).

    Class attribute ``rotation_invariant``: whether the loss is unchanged when every code is
    multiplied by the same orthogonal matrix — the premise of two-stage H²Q (Schwengber et al.,
    arXiv 2311.04207, Sec. 3.2). False for losses on the codes' signs (straight-through) or on
    fixed per-bit targets (hash centres), where a rotation moves bits the loss optimised.
    """

    activation: str = "tanh"
    rotation_invariant: bool = True
    needs_epoch_embeddings: bool = True
    default_quantization_weight: float = 0.1
    loss_name: str = ""

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        n_train: int | None = None,
        random_state: int = 0,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise HashlearnInputError(
                f"{type(self).__name__} got unknown argument(s) {sorted(unknown)}; see its "
                "docstring for the accepted ones."
            )
        self.n_bits = check_n_bits(n_bits)
        self.n_classes = check_n_bits(n_classes, name="n_classes")
        if n_train is not None:
            n_train = check_n_bits(n_train, name="n_train")
        self.n_train = n_train
        if isinstance(random_state, bool) or not isinstance(random_state, int):
            raise HashlearnInputError(f"random_state must be an int, got {random_state!r}.")
        self.random_state = random_state

    def make_generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from ``random_state`` (``offset`` separates streams)."""
        return torch.Generator(device="cpu").manual_seed(self.random_state * 1000003 + offset)

    # -- input checks -------------------------------------------------------------------
    def check_inputs(
        self, codes: Any, labels: Any, indices: Any = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Validate shapes and return ``(codes, float labels (B, C), indices)``."""
        name = type(self).__name__
        if not isinstance(codes, Tensor) or codes.ndim != 2 or not codes.is_floating_point():
            shape = tuple(codes.shape) if hasattr(codes, "shape") else type(codes).__name__
            raise HashlearnInputError(
                f"{name}: codes must be a 2-D floating torch tensor (batch, n_bits), got {shape}."
            )
        batch = codes.shape[0]
        if batch == 0:
            raise HashlearnInputError(
                f"{name}: empty batch (codes has 0 rows); drop empty batches before the loss."
            )
        if codes.shape[1] != self.n_bits:
            raise HashlearnInputError(
                f"{name}: codes have {codes.shape[1]} bits but the loss was built for "
                f"n_bits={self.n_bits}; build the hash layer and the loss with the same n_bits."
            )
        if not isinstance(labels, Tensor):
            raise HashlearnInputError(
                f"{name}: labels must be a torch tensor, got {type(labels).__name__}."
            )
        if labels.ndim == 1 and not labels.is_floating_point():
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
                raise HashlearnInputError(
                    f"{name}: class ids must lie in [0, {self.n_classes}), got range "
                    f"[{int(labels.min())}, {int(labels.max())}]."
                )
            labels = F.one_hot(labels.long(), self.n_classes)
        if labels.ndim != 2 or labels.shape[1] != self.n_classes:
            raise HashlearnInputError(
                f"{name}: labels must be multi-hot (batch, n_classes={self.n_classes}) or 1-D "
                f"integer class ids, got shape {tuple(labels.shape)}; check n_classes."
            )
        if labels.shape[0] != batch:
            raise HashlearnInputError(
                f"{name}: labels have {labels.shape[0]} rows but codes have {batch}; "
                "pass the labels of the same batch."
            )
        labels = labels.to(dtype=codes.dtype, device=codes.device)
        if indices is not None:
            if not isinstance(indices, Tensor) or indices.ndim != 1 or indices.shape[0] != batch:
                raise HashlearnInputError(
                    f"{name}: indices must be a 1-D tensor with one training-set index per "
                    f"item ({batch}), got {getattr(indices, 'shape', type(indices).__name__)}."
                )
            indices = indices.long()
        return codes, labels, indices

    # -- public API ---------------------------------------------------------------------
    def forward(self, codes: Tensor, labels: Tensor, indices: Tensor | None = None) -> Tensor:
        codes, labels, indices = self.check_inputs(codes, labels, indices)
        return self.compute_loss(codes, labels, indices)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        """The formula of the loss on validated inputs; subclasses implement it."""
        raise NotImplementedError

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        """The method's own quantization term, unweighted; default ``mean (u - sgn u)²``."""
        return sign_gap(codes)

    def extra_repr(self) -> str:
        return f"n_bits={self.n_bits}, n_classes={self.n_classes}"
