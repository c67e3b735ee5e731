"""DBDH: Deep Balanced Discrete Hashing for Image Retrieval (Zheng et al., Neurocomputing 2020)."""

from __future__ import annotations

from torch import Tensor

from hashlearn._validation import check_choice
from hashlearn.deep.losses.base import register_loss
from hashlearn.deep.losses.dpsh import DPSHLoss
from hashlearn.deep.signs import sign_ste

VARIANTS = ("deephash", "ste")


@register_loss("dbdh")
class DBDHLoss(DPSHLoss):
    """DPSH's pairwise likelihood with a bit-balance regulariser, in one of two named variants.

    * ``"deephash"`` (default): swuxyj/DeepHash-pytorch ``DBDH.py`` (the public code the HSWD
      code builds on, and the only public DBDH): the outputs are clamped to ``[-1, 1]``
      (``u.clamp(-1, 1)``, no gradient outside), ``θ = ½ uᵢᵀuⱼ`` against the memory of every
      training item's latest output (as DPSH), and the balance term is squared,
      ``mean_i (mean_l u_il)²`` (their ``p = 2``), α = 0.1.
    * ``"ste"`` (our own reading of the paper's discrete forward pass, not the authors' code):
      ``b = sgn(u)`` in the forward pass with the gradient passed straight through,
      ``θ = scale · bᵢᵀbⱼ`` with scale ``2 / n_bits`` (θ in [-2, 2]: ½ saturates the sigmoid on
      ±1 codes, and measured on digits at 16 bits trained to worse-than-random codes) and the
      balance term ``mean_i |mean_l u_il|`` (their ``p = 1``), λ = 0.1.

    Expects linear codes (``activation = "identity"``); the clamp or the sign is applied inside
    the loss.

    Args:
        n_bits, n_classes, n_train, random_state, pairs: see :class:`DPSHLoss`.
        variant: ``"deephash"`` or ``"ste"``.
        scale: the factor in ``θ = scale · uᵀu'`` (None: ½, or ``2 / n_bits`` for ``"ste"``).
    """

    activation = "identity"
    rotation_invariant = False  # see HashLoss
    default_quantization_weight = 0.1

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        variant: str = "deephash",
        scale: float | None = None,
        **kwargs,
    ) -> None:
        check_choice(variant, VARIANTS, "DBDH variant")
        if scale is None:
            scale = 2.0 / n_bits if variant == "ste" else 0.5
        super().__init__(n_bits, n_classes, scale=scale, **kwargs)
        self.variant = variant

    def _discrete(self, codes: Tensor) -> Tensor:
        return sign_ste(codes) if self.variant == "ste" else codes.clamp(-1.0, 1.0)

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        return super().compute_loss(self._discrete(codes), labels, indices)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        if self.variant == "ste":
            return codes.mean(dim=1).abs().mean()
        return self._discrete(codes).mean(dim=1).pow(2).mean()
