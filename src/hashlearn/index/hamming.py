"""Exact brute-force Hamming search over packed binary codes, in memory or from a disk store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._io import (
    LOCK_TIMEOUT_SECONDS,
    HashlearnFileError,
    file_lock,
    load_arrays,
    save_arrays,
)
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import n_bytes_for
from hashlearn.index import _store
from hashlearn.index._knn import QUERY_BLOCK, knn_counting_sort, knn_search, range_search_flat
from hashlearn.index.base import BinaryIndex

# Above this, the per-block buckets of knn_search (k ids per distance value) would be large,
# so search switches to one counting sort per query, whose memory is O(n_db) per thread.
BUCKET_MEMORY_LIMIT = 64 * 2**20
# Bytes of records per memory-mapped block when searching a store opened with mmap=True:
# the address space a search needs beyond the interpreter is a few blocks.
MMAP_BLOCK_BYTES = 1 << 20


def scan_knn(
    words: np.ndarray, query_words: np.ndarray, k: int, n_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``min(k, rows)`` nearest rows of the word-major ``words`` block, ties by row."""
    kb = min(k, words.shape[1])
    if QUERY_BLOCK * (n_bits + 1) * kb * 8 <= BUCKET_MEMORY_LIMIT:
        return knn_search(words, query_words, kb, n_bits)
    return knn_counting_sort(words, query_words, kb, n_bits)


def merge_range_parts(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_queries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One ``(lims, D, I)`` from range results over disjoint row sets, sorted by (D, I)."""
    if len(parts) == 1:
        return parts[0]
    qidx = np.concatenate([np.repeat(np.arange(n_queries), np.diff(p[0])) for p in parts])
    d = np.concatenate([p[1] for p in parts])
    i = np.concatenate([p[2] for p in parts])
    order = np.lexsort((i, d, qidx))
    lims = np.zeros(n_queries + 1, dtype=np.int64)
    np.cumsum(np.bincount(qidx, minlength=n_queries), out=lims[1:])
    return lims, d[order], i[order]


class HammingIndex(BinaryIndex):
    """Exact k-nearest-neighbour and range search by Hamming distance, FAISS-style.

    Codes are packed ``uint8`` rows (see :mod:`hashlearn.codes`). ``search`` returns, for each
    query, the ``k`` closest ids sorted by distance and then by insertion order, so results
    are exact and deterministic, ties included. Ids are the insertion numbers ``0, 1, ...``
    unless given with :meth:`add_with_ids` (int64, as FAISS's ``IndexIDMap``); ties are still
    ordered by insertion, which is id order for the default ids.

    Internally codes are kept as 64-bit words, word-major, and scanned by a parallel numba
    kernel: POPCNT on XORed words, a vectorised per-block minimum to skip blocks farther than
    the current k-th distance, and one bucket per distance value instead of a heap (distances
    take only ``n_bits + 1`` values). Memory beyond the codes is O(threads × n_bits × k); for
    large ``k`` (e.g. a full ranking) a per-query counting sort is used instead, O(threads × n).

    :meth:`save` writes a checksummed store (see :mod:`hashlearn.index._store`);
    ``load(path, mmap=True)`` searches it in blocks of memory-mapped rows without reading it
    into memory, and :meth:`append_to` grows a store crash-safely.

    Args:
        n_bits: code length in bits; every added or queried code must have ceil(n_bits/8) bytes.

    Example:
        >>> index = HammingIndex(64)
        >>> index.add(db_codes)
        >>> distances, ids = index.search(query_codes, k=10)
        >>> lims, distances, ids = index.range_search(query_codes, radius=2)
    """

    def __init__(self, n_bits: int):
        super().__init__(n_bits)
        self._n_words = max(1, -(-self.n_bytes // 8))
        self.reset()

    @property
    def ntotal(self) -> int:
        """Number of codes in the index."""
        return self._store.count if self._store is not None else self._ntotal

    def reset(self) -> None:
        """Remove every code (an index opened with ``mmap=True`` becomes an empty in-memory one)."""
        self._store: _store.StoreHeader | None = None
        self._words = np.zeros((self._n_words, 0), dtype=np.uint64)
        self._ids: np.ndarray | None = None  # None: ids are the row numbers
        self._ntotal = 0
        self._changed()

    def _changed(self) -> None:
        """Hook called whenever the stored codes change (reset, and by default add / remove)."""

    def _rows_added(self, first: int) -> None:
        """Hook: rows ``first ..`` were appended (the earlier rows are unchanged)."""
        self._changed()

    def _rows_removed(self, keep: np.ndarray) -> None:
        """Hook: only the rows where ``keep`` (over the previous rows) is True remain, in order."""
        self._changed()

    # -- adding and removing ------------------------------------------------------------------

    def _add(self, codes: np.ndarray) -> None:
        self._add_rows(codes, None)

    def add_with_ids(self, codes: Any, ids: Any) -> None:
        """Append packed codes with user ids (unique non-negative integers, stored as int64)."""
        codes = self._check_codes(codes, "codes")
        self._add_rows(codes, self._check_new_ids(ids, len(codes)))

    def _add_rows(self, codes: np.ndarray, ids: np.ndarray | None) -> None:
        self._require_in_memory("add codes")
        n, needed = self._ntotal, self._ntotal + len(codes)
        if ids is None and self._ids is not None:  # continue after the largest id
            start = int(self._ids[:n].max()) + 1 if n else 0
            if start + len(codes) - 1 > np.iinfo(np.int64).max:
                raise HashlearnInputError(
                    f"add() gives new codes the ids after the largest one in the index, "
                    f"{start - 1}, but {len(codes)} more do not fit in int64 (max "
                    f"{np.iinfo(np.int64).max}); pass your own with add_with_ids()."
                )
            ids = np.arange(start, start + len(codes), dtype=np.int64)
        if ids is not None and self._ids is None:
            self._ids = np.arange(self._words.shape[1], dtype=np.int64)
        if needed > self._words.shape[1]:
            capacity = max(needed, 2 * self._words.shape[1], 1024)
            grown = np.zeros((self._n_words, capacity), dtype=np.uint64)
            grown[:, :n] = self._words[:, :n]
            self._words = grown
            if self._ids is not None:
                self._ids = np.concatenate([self._ids[:n], np.zeros(capacity - n, np.int64)])
        self._words[:, n:needed] = to_words(codes).T
        if ids is not None:
            self._ids[n:needed] = ids
        self._ntotal = needed
        self._rows_added(n)

    def _check_new_ids(self, ids: Any, n: int) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.ndim != 1 or len(arr) != n:
            raise HashlearnInputError(
                f"ids must be a 1-D array with one id per code ({n}), got shape {arr.shape}."
            )
        if not (np.issubdtype(arr.dtype, np.integer) or (arr.size == 0)):
            raise HashlearnInputError(f"ids must be integers, got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
        if (arr < 0).any():
            raise HashlearnInputError("ids must be non-negative (-1 marks a missing result).")
        if len(np.unique(arr)) != len(arr):
            raise HashlearnInputError("ids contain duplicates; every code needs its own id.")
        clash = np.intersect1d(arr, self.ids) if self.ntotal else arr[:0]
        if len(clash):
            raise HashlearnInputError(
                f"id {int(clash[0])} is already in the index; ids must be unique "
                "(remove_ids() first to replace a code)."
            )
        return arr

    def remove_ids(self, ids: Any) -> int:
        """Remove the codes with these ids (unknown ids are ignored); returns how many went."""
        self._require_in_memory("remove codes")
        remove = np.asarray(ids).ravel()
        if remove.size and not np.issubdtype(remove.dtype, np.integer):
            raise HashlearnInputError(f"ids must be integers, got dtype {remove.dtype}.")
        current = self.ids
        keep = ~np.isin(current, remove)
        removed = int(len(current) - keep.sum())
        if removed:
            self._words = np.ascontiguousarray(self._words[:, : self._ntotal][:, keep])
            self._ids = current[keep]
            self._ntotal = len(self._ids)
            self._rows_removed(keep)
        return removed

    @property
    def ids(self) -> np.ndarray:
        """The id of every stored code, in insertion order (a copy)."""
        if self._store is not None:
            return _store.read_ids_at(self._store, np.arange(self._store.count))
        if self._ids is None:
            return np.arange(self._ntotal, dtype=np.int64)
        return self._ids[: self._ntotal].copy()

    def _require_in_memory(self, action: str) -> None:
        if self._store is not None:
            raise HashlearnInputError(
                f"cannot {action}: this index searches {self._store.path} through memory maps "
                "and is read-only; load it with mmap=False, or grow the store with append_to()."
            )

    # -- searching ----------------------------------------------------------------------------

    def _blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, words)`` blocks, word-major: one block in memory, many from a store."""
        if self._store is None:
            yield 0, self._words[:, : self._ntotal]
            return
        rows = max(1, MMAP_BLOCK_BYTES // self._store.record_size)
        for start, codes, _ in _store.iter_blocks(self._store, rows):
            yield start, np.ascontiguousarray(to_words(codes).T)

    def _knn_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        query_words = to_words(queries)
        best_d = best_i = None
        for start, words in self._blocks():
            d, i = scan_knn(words, query_words, k, self.n_bits)
            i += start
            if best_d is None:
                best_d, best_i = d, i
                continue
            # Earlier blocks hold smaller rows, so a stable sort by distance keeps ties by row.
            cat_d, cat_i = np.hstack([best_d, d]), np.hstack([best_i, i])
            order = np.argsort(cat_d, axis=1, kind="stable")[:, :k]
            best_d = np.take_along_axis(cat_d, order, axis=1)
            best_i = np.take_along_axis(cat_i, order, axis=1)
        return best_d, best_i

    def _range_rows(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query_words = to_words(queries)
        parts = []
        for start, words in self._blocks():
            lims, d, i = range_search_flat(words, query_words, radius)
            parts.append((lims, d, i + start))
        return merge_range_parts(parts, len(queries))

    def _rows_to_ids(self, rows: np.ndarray) -> np.ndarray:
        if self._store is not None:
            return _store.read_ids_at(self._store, rows)
        if self._ids is None:
            return rows
        return self._ids[rows]

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        distances, rows = self._knn_rows(queries, k)
        return distances, self._rows_to_ids(rows)

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lims, distances, rows = self._range_rows(queries, radius)
        return lims, distances, self._rows_to_ids(rows)

    # -- files --------------------------------------------------------------------------------

    @property
    def codes(self) -> np.ndarray:
        """The stored codes as packed ``uint8`` rows (a copy)."""
        if self._store is not None:
            return _store.read_store(self._store.path)[1]
        words = np.ascontiguousarray(self._words[:, : self._ntotal].T)
        return (
            words.view(np.uint8).reshape(self._ntotal, 8 * self._n_words)[:, : self.n_bytes].copy()
        )

    def _store_kind(self) -> tuple[str, int]:
        return "flat", 0

    def _explicit_ids(self) -> np.ndarray | None:
        """The ids to store, or None when they are the row numbers (or there is no code)."""
        if self.ntotal == 0:  # e.g. after remove_ids of every code: no id to keep
            return None
        has_ids = self._store.has_ids if self._store is not None else self._ids is not None
        return self.ids if has_ids else None

    def save(self, path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        """Write the index to ``path`` atomically, under :func:`hashlearn._io.file_lock`: while
        another process writes ``path``, wait up to ``timeout`` seconds (60 by default; 0:
        refuse at once, as the CLI does) for its lock, then raise a clear error.

        The format is a checksummed code store (see :mod:`hashlearn.index._store`), which
        ``load(path, mmap=True)`` searches from disk and :meth:`append_to` grows; a path ending
        in ``.npz`` gets the NumPy archive of earlier releases instead (codes plus SHA-256
        checksums, no ids, no mmap or append).
        """
        if Path(path).suffix == ".npz":
            if self._explicit_ids() is not None:
                raise HashlearnInputError(
                    "the .npz format holds no ids; save an index with ids to another suffix "
                    "(e.g. .hlx), the code store format."
                )
            with file_lock(path, timeout=timeout):
                meta = {"kind": "HammingIndex", "n_bits": self.n_bits}
                save_arrays(path, {"codes": self.codes}, meta)
            return
        kind, n_tables = self._store_kind()
        _store.write_store(
            path, self.codes, self._explicit_ids(), self.n_bits, kind, n_tables, timeout
        )

    def append_to(self, path: str | os.PathLike, timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        """Append this index's codes (and ids) to the store at ``path``, creating it if missing;
        waits for another writer's lock as :meth:`save` does.

        Crash-safe: if the process dies mid-append the store keeps its previous content. With
        default ids, the appended codes get ids continuing the store's row numbers.
        """
        if Path(path).suffix == ".npz":
            raise HashlearnInputError(
                f"append_to needs a code store, not the .npz format ({path}); save the index "
                "to a path with another suffix (e.g. .hlx) first."
            )
        _store.append_store(path, self.codes, self._explicit_ids(), self.n_bits, timeout)

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False, verify: bool = True) -> HammingIndex:
        """Read an index written by :meth:`save` or :meth:`append_to`.

        Args:
            mmap: search the file in place, one memory-mapped block of rows at a time, so a
                store larger than memory can be searched; the index is then read-only.
            verify: check the records' CRC-32 against the header (one pass over the file).
        """
        path = Path(path)
        if path.is_file():
            with open(path, "rb") as handle:
                if handle.read(2) == b"PK":  # the .npz format
                    if mmap:
                        raise HashlearnInputError(
                            f"{path} is in the .npz format, which cannot be memory-mapped; "
                            "re-save it to a path with another suffix (e.g. .hlx)."
                        )
                    return cls._load_npz(path)
        if mmap:
            header = _store.read_header(path)
            if verify:
                rows = max(1, MMAP_BLOCK_BYTES // header.record_size)
                for _ in _store.iter_blocks(header, rows, verify=True):
                    pass
            index = cls._from_header(header)
            index._store = header
            return index
        header, codes, ids = _store.read_store(path)
        index = cls._from_header(header)
        if header.count:
            if ids is None:
                index.add(codes)
            else:
                index.add_with_ids(codes, ids)
        return index

    @classmethod
    def _from_header(cls, header: _store.StoreHeader) -> HammingIndex:
        return cls(header.n_bits)

    @classmethod
    def _load_npz(cls, path: Path) -> HammingIndex:
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
