"""DSDH: Deep Supervised Discrete Hashing (Li, Sun, He & Tan, NeurIPS 2017)."""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn.deep.losses.base import register_loss
from hashlearn.deep.losses.dpsh import DPSHLoss


@register_loss("dsdh")
class DSDHLoss(DPSHLoss):
    """Pairwise likelihood + discrete codes that also solve a linear classification (DSDH eq. 5).

    The full objective is ``pairwise likelihood(U) + μ‖Y - BW‖² + ν‖W‖² + η‖B - U‖²`` over the
    network outputs ``U``, binary codes ``B ∈ {-1, 1}^{n×k}`` and classifier ``W``.  The
    network sees the pairwise logistic likelihood of DPSH — by default between the batch and
    the latest outputs of all training items (``pairs="memory"``, as the reference code
    does).  The authors' DSDH baseline (DeepHash-pytorch ``DSDH.py`` and the HSWD code,
    khoadoan106/single_loss_quantization ``python/DSDH.py``) gives the network nothing else:
    its classification and ridge terms hold no network output, and the η term only enters the
    B-step.  So ``penalty`` defaults to weight 0 (the authors'); an explicit
    ``quantization_weight`` λ adds the paper's η term to the network's loss as
    ``λ · mean (u_i - b_i)²`` towards the item's stored code ``b_i`` (``quantization_penalty``).
    ``B`` and ``W`` are updated by :meth:`on_epoch_end`: ``n_dcc`` rounds of the closed form
    for ``W`` (eq. 8) and discrete cyclic coordinate descent over the bits for ``B`` (eq. 12).
    The reference code runs those rounds once per epoch too (``updateBandW`` at the start of
    every epoch, i.e. after the previous one).  Before the first update (or without
    ``indices``) the target is ``sgn(u)``.

    Defaults ν = 1, η = 55, μ = 1 and 10 DCC rounds are those of the reference code
    (DeepHash-pytorch ``DSDH.py``, which follows ``DSDH_PyTorch``); the B-step
    ``sgn(μ Y Wᵀ + η U - μ B' W' w)`` is the reference's ``sgn(W Y + η/μ U - ...)`` times μ.

    Stateful: pass ``n_train`` and the batch ``indices`` (positions in the training split);
    ``on_epoch_end(embeddings_all, labels_all)`` must receive the training embeddings in the
    same order.  ``B`` and ``W`` are buffers, so ``loss.state_dict()`` checkpoints them.

    Args:
        n_bits, n_classes, n_train, random_state, scale, pairs: see :class:`DPSHLoss`.
        mu: weight μ of the classification term in the B/W updates.
        nu: ridge weight ν on W.
        eta: weight η of ``‖B - U‖²`` in the B update.
        n_dcc: rounds of (W update, B update) per epoch.
    """

    default_quantization_weight = 0.0

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        mu: float = 1.0,
        nu: float = 1.0,
        eta: float = 55.0,
        n_dcc: int = 10,
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        self.mu, self.nu, self.eta, self.n_dcc = float(mu), float(nu), float(eta), int(n_dcc)
        n = self.n_train or 0
        self.register_buffer("binary_codes", torch.zeros(n, self.n_bits))
        self.register_buffer("classifier", torch.zeros(self.n_bits, self.n_classes))
        self.register_buffer("state_ready", torch.zeros((), dtype=torch.bool))
        self._batch_indices: Tensor | None = None

    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        self._batch_indices = indices
        return super().compute_loss(codes, labels, indices)

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        idx = self._batch_indices
        if bool(self.state_ready) and idx is not None and idx.shape[0] == codes.shape[0]:
            target = self.binary_codes[idx.to(self.binary_codes.device)].to(codes)
        else:
            target = torch.where(codes > 0, 1.0, -1.0).to(codes)
        return (codes - target).pow(2).mean()

    @torch.no_grad()
    def on_epoch_end(self, embeddings_all: Tensor, labels_all: Tensor) -> None:
        """Update ``W`` (ridge regression of Y on B) and ``B`` (DCC, bit by bit)."""
        u = embeddings_all.detach().to(torch.float64)
        y = labels_all.detach().to(torch.float64)
        if y.ndim == 1:
            y = torch.nn.functional.one_hot(y.long(), self.n_classes).to(torch.float64)
        b = (
            u.sign()
            if not bool(self.state_ready) or self.binary_codes.shape != u.shape
            else (self.binary_codes.to(u))
        )
        b = torch.where(b == 0, torch.ones_like(b), b)
        ridge = (self.nu / self.mu) * torch.eye(self.n_bits, dtype=u.dtype, device=u.device)
        for _ in range(self.n_dcc):
            w = torch.linalg.solve(b.T @ b + ridge, b.T @ y)  # (k, C)
            p = self.mu * y @ w.T + self.eta * u  # (n, k)
            for bit in range(self.n_bits):
                others = b @ (w @ w[bit]) - b[:, bit] * (w[bit] @ w[bit])  # B' W' w
                column = p[:, bit] - self.mu * others
                b[:, bit] = torch.where(column >= 0, 1.0, -1.0)
        w = torch.linalg.solve(b.T @ b + ridge, b.T @ y)
        self.binary_codes = b.to(torch.float32)
        self.classifier = w.to(torch.float32)
        self.state_ready = torch.ones((), dtype=torch.bool, device=b.device)
