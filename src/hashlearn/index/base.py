"""What every binary index shares: the FAISS-style surface and its input checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._validation import HashlearnInputError, check_n_bits
from hashlearn.codes import _check_packed, mask_padding, n_bytes_for


class BinaryIndex:
    """Base for indexes over packed ``n_bits`` codes: ``add``, ``search``, ``range_search``,
    ``reset``, ``len``.

    Subclasses implement ``_add(codes)``, ``_search(queries, k)``,
    ``_range_search(queries, radius)``, ``reset()`` and ``ntotal``; the base validates codes
    (dtype, bytes per code, empty input, stray padding bits), ``k`` and ``radius``.

    One rule for every index: ``k`` larger than the number of codes in the index is an error
    (:class:`HashlearnInputError`), never a result padded with ``-1``. (Approximate indexes
    may still return fewer than ``k`` hits for ``k <= len(index)``; those slots hold id -1.)
    """

    def __init__(self, n_bits: int):
        self.n_bits = check_n_bits(n_bits)
        self.n_bytes = n_bytes_for(self.n_bits)

    @property
    def ntotal(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_bits={self.n_bits}, ntotal={self.ntotal})"

    def add(self, codes: Any) -> None:
        """Append packed codes; they get the ids after the largest id in the index (``max + 1,
        max + 2, ...``; 0, 1, ... when it is empty).

        While the ids are the row numbers (no ``add_with_ids`` / ``remove_ids`` yet) that is
        ``ntotal, ntotal + 1, ...``; after ``remove_ids`` the new ids never reuse a smaller
        one, only ids above every id still present (removing the largest frees it again).
        """
        self._add(self._check_codes(codes, "codes"))

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query: ``(distances, ids)``, each (n_queries, k).

        Raises:
            HashlearnInputError: if ``k`` is not in ``1 .. len(index)``: asking for more
                neighbours than the database holds is an error, not a silently padded result.
        """
        queries = self._check_codes(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise HashlearnInputError(f"k must be a positive integer, got {k!r}.")
        if self.ntotal == 0:
            raise HashlearnInputError("the index is empty; add() database codes before search().")
        if k > self.ntotal:
            raise HashlearnInputError(
                f"k={k} is larger than the {self.ntotal} codes in the index; "
                f"use k <= {self.ntotal}."
            )
        return self._search(queries, int(k))

    def range_search(self, queries: Any, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every code within Hamming distance ``radius`` (inclusive) of each query, FAISS-style.

        Returns ``(lims, distances, ids)``: the hits of query ``q`` are
        ``distances[lims[q]:lims[q + 1]]`` and ``ids[lims[q]:lims[q + 1]]``, sorted by distance
        and then by insertion order. ``lims`` is int64 (n_queries + 1), distances int32, ids int64.
        Note that FAISS's own binary ``range_search`` keeps distances ``< radius``; here the
        radius is inclusive, as in the hashing papers' "lookup within Hamming radius 2".
        """
        queries = self._check_codes(queries, "queries")
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise HashlearnInputError(
                f"radius must be a non-negative integer (a Hamming distance), got {radius!r}."
            )
        if self.ntotal == 0:
            raise HashlearnInputError(
                "the index is empty; add() database codes before range_search()."
            )
        return self._range_search(queries, min(int(radius), self.n_bits))

    def reset(self) -> None:  # pragma: no cover - abstract
        """Remove every code."""
        raise NotImplementedError

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _add(self, codes: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _check_codes(self, codes: Any, name: str) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype == np.uint8 and arr.ndim == 2 and arr.shape[1] != self.n_bytes:
            raise HashlearnInputError(
                f"{name} have {arr.shape[1]} bytes per code but this index holds "
                f"{self.n_bits}-bit codes ({self.n_bytes} bytes); encode them with the same n_bits."
            )
        arr = _check_packed(arr, name, self.n_bits)
        if len(arr) == 0:
            raise HashlearnInputError(f"{name} is empty; pass at least one code.")
        return mask_padding(arr, self.n_bits)


def sort_hits(
    lims: np.ndarray, distances: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order each query's range-search hits by (distance, id), keeping ``lims``."""
    query = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
    order = np.lexsort((ids, distances, query))
    return lims, distances[order], ids[order]
