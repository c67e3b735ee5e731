"""CSQ: Central Similarity Quantization for Efficient Image and Video Retrieval.

Yuan et al., CVPR 2020.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import hadamard
from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.losses.base import HashLoss, register_loss

CENTER_SCHEMES = ("auto", "hadamard", "random")


def hash_centers(
    n_classes: int,
    n_bits: int,
    scheme: str = "auto",
    random_state: int = 0,
    max_tries: int = 2000,
) -> np.ndarray:
    """``(n_classes, n_bits)`` ±1 hash centres, pairwise far apart (CSQ section 3.2).

    ``hadamard``: rows of the Hadamard matrix H_k, then of -H_k (pairwise Hamming distance
    k/2; needs k a power of two and ``n_classes <= 2k``).  ``random``: balanced codes (⌊k/2⌋
    entries +1, the rest -1, in a random order) drawn with ``random_state``, each accepted
    only if it is at Hamming distance at least ``max(1, k/4)`` from the centres drawn before
    (the paper samples Bernoulli(0.5) codes, whose expected distance is k/2; the floor
    makes "too few bits for this many classes" an error instead of colliding centres).
    ``auto``: hadamard when possible, else random.
    """
    check_choice(scheme, CENTER_SCHEMES, "CSQ centre scheme")
    power_of_two = n_bits >= 2 and (n_bits & (n_bits - 1)) == 0
    hadamard_ok = power_of_two and n_classes <= 2 * n_bits
    if scheme == "hadamard" and not hadamard_ok:
        raise HashlearnInputError(
            f"CSQ Hadamard centres need n_bits a power of two with n_classes <= 2*n_bits, got "
            f"n_bits={n_bits}, n_classes={n_classes}; use centers='random' or 'auto'."
        )
    if scheme != "random" and hadamard_ok:
        h = hadamard(n_bits)
        return np.concatenate([h, -h])[:n_classes].astype(np.float32)
    rng = np.random.default_rng(random_state)
    min_distance = max(1, n_bits // 4)
    base = np.where(np.arange(n_bits) < n_bits // 2, 1.0, -1.0)
    centers: list[np.ndarray] = []
    for _ in range(max_tries):
        candidate = rng.permutation(base)
        if all(np.sum(candidate != c) >= min_distance for c in centers):
            centers.append(candidate)
            if len(centers) == n_classes:
                return np.stack(centers).astype(np.float32)
    raise HashlearnInputError(
        f"CSQ cannot place {n_classes} hash centres at pairwise Hamming distance >= "
        f"{min_distance} with n_bits={n_bits}; use more bits (a power of two >= "
        f"{n_classes / 2:.0f} allows Hadamard centres)."
    )


@register_loss("csq")
class CSQLoss(HashLoss):
    """Central similarity: binary cross-entropy between each code and its hash centre (CSQ eq. 5-7).

    With ``c`` the item's centre, ``L = -mean_{i,b} [ĉ log ĥ + (1 - ĉ) log(1 - ĥ)]`` where
    ``ĥ = (h + 1)/2`` and ``ĉ = (c + 1)/2``.  A multi-label item's centre is the sign of the
    mean of its labels' centres (CSQ section 3.2); zero entries (ties) take a fixed random
    sign drawn once from ``random_state``.  Own quantization term: ``mean (|h| - 1)²``,
    λ = 1e-4 (the paper's value).  Expects tanh codes.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        centers: "auto" (Hadamard when ``n_bits`` is a power of two and ``n_classes <=
            2·n_bits``, else random balanced), "hadamard" or "random".
        eps: clamp of ``ĥ`` inside ``(0, 1)`` for the logarithms.
    """

    activation = "tanh"
    rotation_invariant = False  # see HashLoss
    default_quantization_weight = 1e-4

    def __init__(
        self, n_bits: int, n_classes: int, *, centers: str = "auto", eps: float = 1e-7, **kwargs
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.centers = centers
        self.eps = float(eps)
        table = hash_centers(self.n_classes, self.n_bits, centers, self.random_state)
        self.register_buffer("center_table", torch.from_numpy(table))
        ties = torch.randint(0, 2, (self.n_bits,), generator=self.make_generator(1)) * 2 - 1
        self.register_buffer("tie_signs", ties.float())

    def item_centers(self, labels: Tensor) -> Tensor:
        """``sgn(labels @ centres)`` with ties broken by ``tie_signs`` (one-hot: the centre)."""
        summed = labels @ self.center_table.to(labels.dtype)
        ties = self.tie_signs.to(labels.dtype).expand_as(summed)
        return torch.where(summed == 0, ties, torch.sign(summed))

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        target = (self.item_centers(labels) + 1.0) / 2.0
        prob = ((codes + 1.0) / 2.0).clamp(self.eps, 1.0 - self.eps)
        return -(target * torch.log(prob) + (1.0 - target) * torch.log1p(-prob)).mean()

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return (codes.abs() - 1.0).pow(2).mean()
