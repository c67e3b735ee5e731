"""ADSH: Asymmetric Deep Supervised Hashing (Jiang & Li, AAAI 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.deep.distributed import gather_rows
from hashlearn.deep.losses.base import HashLoss, register_loss

SIMILARITIES = ("soft", "sign")


@register_loss("adsh")
class ADSHLoss(HashLoss):
    """Query network trained against database codes that are learned directly (ADSH eq. 2-10).

    The training items are the database; their codes ``V ∈ {-1, 1}^{n×k}`` are variables of the
    problem, not network outputs.  Each outer iteration samples a query subset ``Ω`` of
    ``n_samples`` training items, trains the network on ``Ω`` for ``inner_epochs`` epochs on

        ``L = [Σ_{i, j} (u_iᵀ v_j - k S_ij)² + γ Σ_i (v_i - u_i)²] / (n B)``

    (``i`` over the batch, ``j`` over all n items, ``u = tanh(F(x))``), then updates ``V`` in
    closed form bit by bit (eq. 10): ``V_{*b} = -sgn(2 V_{-b} U_{-b}ᵀ U_{*b} + Q_{*b})`` with
    ``Q = -2k Sᵀ U - 2γ Ū`` (``Ū`` the outputs of ``Ω`` at their rows, 0 elsewhere).
    ``V`` starts at 0, as in the authors' code.  The γ term is part of the algorithm (it ties
    ``V`` to the queries' outputs), so there is no separate penalty
    (``default_quantization_weight = 0``).

    Defaults γ = 200, ``n_samples = 2000``, 3 inner epochs and the similarity
    ``S = S01 (1 + r) - r`` with ``r`` = similar / dissimilar pairs (``similarity="soft"``)
    follow the authors' public code (``ADSH-AAAI2018``, as ported in DeepHash-pytorch
    ``ADSH.py``, which trains with batch 64 and Adam, lr 1e-4); ``similarity="sign"`` is the
    paper's ``S ∈ {-1, +1}``.

    Trainer protocol (hooks of :class:`HashLoss`): ``set_training_labels`` once,
    ``epoch_items(epoch)`` gives the epoch's ``Ω`` (one outer iteration = ``inner_epochs``
    consecutive epochs), batches pass their ``indices``, ``on_epoch_end`` runs the V-step after
    the last inner epoch.  ``V`` is the buffer ``database_codes``.  New items (and the queries)
    are encoded by the network.

    Args:
        n_bits, n_classes, n_train, random_state: see :class:`HashLoss` (``n_train``
            required; ``random_state`` seeds the query subsets).
        gamma: γ.
        n_samples: size of ``Ω`` (all items when the training set is smaller).
        inner_epochs: epochs over ``Ω`` per outer iteration.
        similarity: ``"soft"`` or ``"sign"``.
    """

    activation = "tanh"
    rotation_invariant = False  # V is fixed per bit: a rotation of u moves away from it
    default_quantization_weight = 0.0
    needs_epoch_embeddings = False

    def __init__(
        self,
        n_bits: int,
        n_classes: int,
        *,
        gamma: float = 200.0,
        n_samples: int = 2000,
        inner_epochs: int = 3,
        similarity: str = "soft",
        **kwargs,
    ) -> None:
        super().__init__(n_bits, n_classes, **kwargs)
        if self.n_train is None:
            raise HashlearnInputError(
                "ADSH learns one code per training item: pass n_train (the training split's size)."
            )
        for name, value in (("n_samples", n_samples), ("inner_epochs", inner_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HashlearnInputError(f"{name} must be a positive integer, got {value!r}.")
        self.gamma, self.n_samples, self.inner_epochs = float(gamma), n_samples, inner_epochs
        self.similarity = check_choice(similarity, SIMILARITIES, "ADSH similarity")
        n, k = self.n_train, self.n_bits
        self.register_buffer("database_codes", torch.zeros(n, k))
        self.register_buffer("query_outputs", torch.zeros(n, k))
        self.register_buffer("database_labels", torch.zeros(n, self.n_classes))
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.long))

    # -- hooks -------------------------------------------------------------------------------
    def set_training_labels(self, labels: Tensor) -> None:
        """All ``n_train`` training labels (class ids or multi-hot), in training order."""
        if not isinstance(labels, Tensor) or labels.shape[0] != self.n_train:
            raise HashlearnInputError(
                f"ADSH needs the labels of all n_train={self.n_train} training items, got "
                f"{getattr(labels, 'shape', type(labels).__name__)}."
            )
        if labels.ndim == 1:
            labels = torch.nn.functional.one_hot(labels.long(), self.n_classes)
        with torch.no_grad():
            self.database_labels.copy_(labels.to(self.database_labels))

    def epoch_items(self, epoch: int) -> Tensor:
        """The sorted training positions of ``Ω`` for the 1-based ``epoch``."""
        outer = (int(epoch) - 1) // self.inner_epochs
        order = torch.randperm(self.n_train, generator=self.make_generator(outer + 1))
        return order[: min(self.n_samples, self.n_train)].sort().values

    def _similarity(self, labels: Tensor, database_labels: Tensor) -> Tensor:
        s01 = (labels @ database_labels.T > 0).to(labels.dtype)
        if self.similarity == "sign":
            return 2.0 * s01 - 1.0
        dissimilar = (1.0 - s01).sum()
        r = s01.sum() / dissimilar if bool(dissimilar > 0) else s01.new_zeros(())
        return s01 * (1.0 + r) - r

    # -- loss --------------------------------------------------------------------------------
    def compute_loss(self, codes: Tensor, labels: Tensor, indices: Tensor | None) -> Tensor:
        if indices is None:
            raise HashlearnInputError(
                "ADSH pairs each batch item with the database code of every training item: "
                "pass the batch's training-set indices."
            )
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= self.n_train):
            raise HashlearnInputError(
                f"ADSH: batch indices must lie in [0, n_train={self.n_train})."
            )
        indices = indices.to(self.database_codes.device)
        with torch.no_grad():  # every rank's batch rows under DDP (gather_rows)
            rows, stored = gather_rows(indices, codes)
            self.query_outputs[rows] = stored.to(self.query_outputs.dtype)
        v = self.database_codes.to(codes.dtype)
        s = self._similarity(labels, self.database_labels.to(codes.dtype))
        square = (codes @ v.T - self.n_bits * s).pow(2).sum()
        quant = self.gamma * (v[indices] - codes).pow(2).sum()
        return (square + quant) / (self.n_train * len(codes))

    def quantization_penalty(self, codes: Tensor) -> Tensor:
        return codes.sum() * 0.0

    @torch.no_grad()
    def on_epoch_end(self, embeddings_all: Tensor | None = None, labels_all: Tensor | None = None):
        """Count the epoch; after an outer iteration's last inner epoch, run the V-step."""
        self.epochs_done += 1
        done = int(self.epochs_done)
        if done % self.inner_epochs == 0:
            self.update_database_codes(self.epoch_items(done))

    @torch.no_grad()
    def update_database_codes(self, omega: Tensor, chunk: int = 8192) -> None:
        """ADSH eq. 10 for the query subset ``omega`` and its stored outputs."""
        omega = omega.to(self.database_codes.device)
        u = self.query_outputs[omega].to(torch.float64)
        y_omega = self.database_labels[omega].to(torch.float64)
        n, k = self.n_train, self.n_bits
        st_u = torch.zeros(n, k, dtype=torch.float64, device=u.device)  # S01ᵀ U
        n_similar = 0.0
        for start in range(0, n, chunk):
            rows = self.database_labels[start : start + chunk].to(torch.float64)
            s01 = (rows @ y_omega.T > 0).to(torch.float64)
            st_u[start : start + chunk] = s01 @ u
            n_similar += float(s01.sum())
        if self.similarity == "sign":
            st_u = 2.0 * st_u - u.sum(dim=0)
        else:
            n_dissimilar = len(omega) * n - n_similar
            r = n_similar / n_dissimilar if n_dissimilar > 0 else 0.0
            st_u = (1.0 + r) * st_u - r * u.sum(dim=0)
        q = -2.0 * k * st_u
        q[omega] -= 2.0 * self.gamma * u
        v = self.database_codes.to(torch.float64)
        gram = u.T @ u
        for bit in range(k):
            others = v @ gram[:, bit] - v[:, bit] * gram[bit, bit]  # V_{-b} U_{-b}ᵀ U_b
            v[:, bit] = torch.where(2.0 * others + q[:, bit] > 0, -1.0, 1.0)
        self.database_codes.copy_(v.to(self.database_codes.dtype))
