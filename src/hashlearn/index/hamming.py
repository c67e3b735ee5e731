"""Exact brute-force Hamming search over packed binary codes."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._io import HashlearnFileError, load_arrays, save_arrays
from hashlearn._validation import HashlearnInputError, check_n_bits
from hashlearn.codes import _check_packed, mask_padding, n_bytes_for
from hashlearn.index._knn import knn_search


class HammingIndex:
    """Exact k-nearest-neighbour search by Hamming distance, FAISS-style.

    Codes are packed ``uint8`` rows (see :mod:`hashlearn.codes`). ``search`` returns, for each
    query, the ``k`` closest database ids sorted by distance and then by id (the order of
    insertion), so results are exact and deterministic, ties included.

    Internally codes are kept as 64-bit words, word-major, and scanned by a parallel numba
    kernel: POPCNT on XORed words, a vectorised per-block minimum to skip blocks farther than
    the current k-th distance, and one bucket per distance value instead of a heap (distances
    take only ``n_bits + 1`` values). Memory beyond the codes is O(threads × n_bits × k).

    Args:
        n_bits: code length in bits; every added or queried code must have ceil(n_bits/8) bytes.

    Example:
        >>> index = HammingIndex(64)
        >>> index.add(db_codes)
        >>> distances, ids = index.search(query_codes, k=10)
    """

    def __init__(self, n_bits: int):
        self.n_bits = check_n_bits(n_bits)
        self.n_bytes = n_bytes_for(self.n_bits)
        self._n_words = max(1, -(-self.n_bytes // 8))
        self._words = np.zeros((self._n_words, 0), dtype=np.uint64)
        self._ntotal = 0

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._ntotal

    def __len__(self) -> int:
        return self._ntotal

    def __repr__(self) -> str:
        return f"HammingIndex(n_bits={self.n_bits}, ntotal={self._ntotal})"

    def reset(self) -> None:
        """Remove every code."""
        self._words = np.zeros((self._n_words, 0), dtype=np.uint64)
        self._ntotal = 0

    def add(self, codes: Any) -> None:
        """Append packed codes; they get ids ``ntotal, ntotal + 1, ...``."""
        codes = self._check_codes(codes, "codes")
        new = to_words(codes).T
        needed = self._ntotal + len(codes)
        if needed > self._words.shape[1]:
            capacity = max(needed, 2 * self._words.shape[1], 1024)
            grown = np.zeros((self._n_words, capacity), dtype=np.uint64)
            grown[:, : self._ntotal] = self._words[:, : self._ntotal]
            self._words = grown
        self._words[:, self._ntotal : needed] = new
        self._ntotal = needed

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest codes of each query.

        Returns:
            ``(distances, ids)``, both of shape (n_queries, k): ``int32`` Hamming distances in
            increasing order and ``int64`` database ids, ties ordered by id.

        Raises:
            HashlearnInputError: if ``k`` is not in ``1 .. len(index)`` (asking for more
                neighbours than the database holds is an error, not a silently padded result).
        """
        queries = self._check_codes(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise HashlearnInputError(f"k must be a positive integer, got {k!r}.")
        if self._ntotal == 0:
            raise HashlearnInputError("the index is empty; add() database codes before search().")
        if k > self._ntotal:
            raise HashlearnInputError(
                f"k={k} is larger than the {self._ntotal} codes in the index; "
                f"use k <= {self._ntotal}."
            )
        words = self._words[:, : self._ntotal]
        return knn_search(words, to_words(queries), int(k), self.n_bits)

    @property
    def codes(self) -> np.ndarray:
        """The stored codes as packed ``uint8`` rows (a copy)."""
        words = np.ascontiguousarray(self._words[:, : self._ntotal].T)
        return words.view(np.uint8).reshape(self._ntotal, -1)[:, : self.n_bytes].copy()

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (``.npz``, no pickle), atomically."""
        save_arrays(path, {"codes": self.codes}, {"kind": "HammingIndex", "n_bits": self.n_bits})

    @classmethod
    def load(cls, path: str | os.PathLike) -> HammingIndex:
        """Read an index written by :meth:`save`."""
        arrays, meta = load_arrays(path)
        if meta.get("kind") != "HammingIndex" or "codes" not in arrays:
            raise HashlearnFileError(f"{path} does not hold a HammingIndex.")
        index = cls(meta["n_bits"])
        index.add(arrays["codes"])
        return index

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
