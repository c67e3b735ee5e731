"""The latest outputs of every training item, for losses that pair a batch with all of them.

DPSH (Li, Wang & Kang, IJCAI 2016) and DSDH (Li, Sun, He & Tan, NeurIPS 2017) define their
likelihood over all pairs of the training set; their public code (``DPSH_pytorch``, and
``DPSH.py`` / ``DSDH.py`` of DeepHash-pytorch) keeps an ``n × k`` matrix ``U`` of the latest
network outputs, overwrites the batch's rows, and pairs every batch item with every row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hashlearn._validation import HashlearnInputError
from hashlearn.deep.distributed import gather_rows

PAIR_MODES = ("memory", "batch")


class PairMemory(torch.nn.Module):
    """Buffers ``codes`` (n, k), ``labels`` (n, C) and ``filled`` (n,) of the training items.

    Buffers, so a loss's ``state_dict`` (and every checkpoint) holds the memory.
    """

    def __init__(self, n_items: int, n_bits: int, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("codes", torch.zeros(n_items, n_bits))
        self.register_buffer("labels", torch.zeros(n_items, n_classes))
        self.register_buffer("filled", torch.zeros(n_items, dtype=torch.bool))

    def check_indices(self, indices: Tensor, owner: str) -> None:
        n = self.codes.shape[0]
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
            raise HashlearnInputError(
                f"{owner}: batch indices must lie in [0, n_train={n}), got "
                f"[{int(indices.min())}, {int(indices.max())}]; pass positions in the training "
                "split and the split's size as n_train."
            )

    def pair_products(
        self, codes: Tensor, labels: Tensor, indices: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Store the batch, then return ``(θ, s, mask)`` of shape (B, n).

        ``θ_ij = u_i · U_j`` with ``U_j`` the memory row of item j — except for the batch's own
        items, whose current outputs ``u_j`` are used (with gradient), so that a batch holding
        the whole training set gives exactly the in-batch loss.  ``s_ij`` is the label
        similarity; ``mask`` keeps the rows filled so far and drops the pairs ``(i, i)``.
        """
        indices = indices.to(self.codes.device)
        with torch.no_grad():  # every rank's batch rows under DDP (gather_rows)
            rows, stored, stored_labels = gather_rows(indices, codes, labels)
            self.codes[rows] = stored.to(self.codes.dtype)
            self.labels[rows] = stored_labels.to(self.labels.dtype)
            self.filled[rows] = True
        memory = self.codes.to(codes.dtype)
        theta = (codes @ memory.T).index_copy(1, indices, codes @ codes.T)
        similarity = (labels @ self.labels.to(labels.dtype).T > 0).to(codes.dtype)
        mask = self.filled[None, :].expand(len(codes), -1).clone()
        mask[torch.arange(len(codes), device=mask.device), indices] = False
        return theta, similarity, mask
