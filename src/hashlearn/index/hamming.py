"""Exact brute-force Hamming search over packed binary codes."""

from __future__ import annotations

import os

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._io import HashlearnFileError, file_lock, load_arrays, save_arrays
from hashlearn.codes import n_bytes_for
from hashlearn.index._knn import QUERY_BLOCK, knn_counting_sort, knn_search
from hashlearn.index.base import BinaryIndex

# Above this, the per-block buckets of knn_search (k ids per distance value) would be large,
# so search switches to one counting sort per query, whose memory is O(n_db) per thread.
BUCKET_MEMORY_LIMIT = 64 * 2**20


class HammingIndex(BinaryIndex):
    """Exact k-nearest-neighbour search by Hamming distance, FAISS-style.

    Codes are packed ``uint8`` rows (see :mod:`hashlearn.codes`). ``search`` returns, for each
    query, the ``k`` closest database ids sorted by distance and then by id (the order of
    insertion), so results are exact and deterministic, ties included.

    Internally codes are kept as 64-bit words, word-major, and scanned by a parallel numba
    kernel: POPCNT on XORed words, a vectorised per-block minimum to skip blocks farther than
    the current k-th distance, and one bucket per distance value instead of a heap (distances
    take only ``n_bits + 1`` values). Memory beyond the codes is O(threads × n_bits × k); for
    large ``k`` (e.g. a full ranking) a per-query counting sort is used instead, O(threads × n).

    Args:
        n_bits: code length in bits; every added or queried code must have ceil(n_bits/8) bytes.

    Example:
        >>> index = HammingIndex(64)
        >>> index.add(db_codes)
        >>> distances, ids = index.search(query_codes, k=10)
    """

    def __init__(self, n_bits: int):
        super().__init__(n_bits)
        self._n_words = max(1, -(-self.n_bytes // 8))
        self.reset()

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._ntotal

    def reset(self) -> None:
        """Remove every code."""
        self._words = np.zeros((self._n_words, 0), dtype=np.uint64)
        self._ntotal = 0

    def _add(self, codes: np.ndarray) -> None:
        needed = self._ntotal + len(codes)
        if needed > self._words.shape[1]:
            capacity = max(needed, 2 * self._words.shape[1], 1024)
            grown = np.zeros((self._n_words, capacity), dtype=np.uint64)
            grown[:, : self._ntotal] = self._words[:, : self._ntotal]
            self._words = grown
        self._words[:, self._ntotal : needed] = to_words(codes).T
        self._ntotal = needed

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        words, query_words = self._words[:, : self._ntotal], to_words(queries)
        bucket_bytes = QUERY_BLOCK * (self.n_bits + 1) * k * 8
        if bucket_bytes <= BUCKET_MEMORY_LIMIT:
            return knn_search(words, query_words, k, self.n_bits)
        return knn_counting_sort(words, query_words, k, self.n_bits)

    @property
    def codes(self) -> np.ndarray:
        """The stored codes as packed ``uint8`` rows (a copy)."""
        words = np.ascontiguousarray(self._words[:, : self._ntotal].T)
        return words.view(np.uint8).reshape(self._ntotal, -1)[:, : self.n_bytes].copy()

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (``.npz``, no pickle, SHA-256 checked), atomically, under
        :func:`hashlearn._io.file_lock`: a concurrent writer gets a clear error. Wrap a
        load → add → save in ``file_lock(path)`` to make the whole update exclusive."""
        with file_lock(path):
            save_arrays(
                path, {"codes": self.codes}, {"kind": "HammingIndex", "n_bits": self.n_bits}
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> HammingIndex:
        """Read an index written by :meth:`save`; its checksums and ``n_bits`` are verified."""
        arrays, meta = load_arrays(path)
        codes, n_bits = arrays.get("codes"), meta.get("n_bits")
        if meta.get("kind") != "HammingIndex" or codes is None:
            raise HashlearnFileError(f"{path} does not hold a HammingIndex.")
        if isinstance(n_bits, bool) or not isinstance(n_bits, int) or n_bits < 1:
            raise HashlearnFileError(f"{path}: n_bits={n_bits!r} in its metadata is not valid.")
        spare = 8 * n_bytes_for(n_bits) - n_bits
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != n_bytes_for(n_bits):
            raise HashlearnFileError(
                f"{path}: its metadata says n_bits={n_bits} ({n_bytes_for(n_bits)} bytes per "
                f"code) but it holds {codes.dtype} codes of shape {codes.shape}; the file was "
                "edited or corrupted."
            )
        if spare and len(codes) and (codes[:, -1] & np.uint8((1 << spare) - 1)).any():
            raise HashlearnFileError(
                f"{path}: its metadata says n_bits={n_bits} but the codes use bits beyond "
                f"{n_bits}; the file was edited or corrupted."
            )
        index = cls(n_bits)
        if len(codes):
            index.add(codes)
        return index
