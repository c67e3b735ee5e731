"""DBDH: Deep Balanced Discrete Hashing for Image Retrieval (Zheng et al., Neurocomputing 2020)."""

from __future__ import annotations

from torch import Tensor

from hashlearn.deep.losses.base import register_loss
from hashlearn.deep.losses.dpsh import DPSHLoss
from hashlearn.deep.signs import sign_ste


@register_loss("dbdh")
class DBDHLoss(DPSHLoss):
    """Pairwise likelihood on the binary codes themselves, with a straight-through gradient.

    DBDH keeps the network's outputs discrete in the forward pass: ``b = sgn(u)``, and
    propagates gradients straight through the sign, so the DPSH pairwise likelihood
    ``log(1 + e^θ) - s θ`` with ``θ = scale · b_iᵀb_j`` is computed on ``b``.  The scale
    defaults to ``2 / n_bits`` (θ in [-2, 2]): DPSH's ½ saturates the sigmoid on ±1 codes
    (θ = ±k/2) and, measured on digits at 16 bits, trains to worse-than-random codes.
    Its own regulariser is a bit-balance term that asks every code to hold as many +1 as
    -1, ``mean_i |mean_l u_il|``, λ = 0.1.  Expects linear codes (``activation =
    "identity"``); the sign is applied inside the loss.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss`.
        scale: the factor in ``θ = scale · bᵀb'`` (default ``2 / n_bits``).
    """

    activation = "identity"
    rotation_invariant = False  # see HashLoss
    default_quantization_weight = 0.1

    def __init__(
        self, n_bits: int, n_classes: int, *, scale: float | None = None, **kwargs
    ) -> None:
        super().__init__(
            n_bits, n_classes, scale=2.0 / n_bits if scale is None else scale, **kwargs
        )

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        return super().compute_loss(sign_ste(codes), labels, indices)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.mean(dim=1).abs().mean()
