"""Exact k-NN and range search by multi-index hashing, with results identical to the flat scan."""

from __future__ import annotations

import math
import os

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._jit import note_compile
from hashlearn._validation import HashlearnInputError
from hashlearn.index import _store
from hashlearn.index._mih import (
    ball_sizes,
    counting_sort,
    mih_knn,
    mih_range,
    substring_masks,
    substring_runs,
    table_keys,
)
from hashlearn.index.hamming import HammingIndex

MAX_SUBSTRING_BITS = 32
# A query whose probing work (8 per bucket lookup + 1 per candidate) passes
# max(MIN_BUDGET, ntotal * BUDGET_PER_CODE) is answered by the flat scan instead.
BUDGET_PER_CODE = 1 / 4
MIN_BUDGET = 256


class MIHIndex(HammingIndex):
    """Exact Hamming search by multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012;
    TPAMI 2014, "Fast Exact Search in Hamming Space with Multi-Index Hashing").

    The ``n_bits`` code is split into ``m`` disjoint substrings, each indexed by a table; a
    query probes the tables at substring radius 0, 1, 2, ... until the pigeonhole bound
    certifies the ``k``-th distance (TPAMI 2014, Sec. 3-4; see :mod:`hashlearn.index._mih`).
    Results are identical to :class:`HammingIndex`: same distances, ties ordered by insertion,
    same ids, for ``search`` and ``range_search``.

    Tables are compact CSR arrays: per substring key an offset (direct-addressed when the key
    space is at most ~8 entries per code, else sorted unique keys searched by bisection), the
    members' row numbers and their full codes in key order. They are built on the first search
    after codes change, with ``m`` from the paper's rule ``m = b / log2(n)`` (TPAMI 2014,
    Sec. 4.1; we round to the nearest integer and keep substrings at most 32 bits) unless
    ``n_tables`` is given. Memory is about ``m × (code bytes + 4)`` bytes per code plus the
    offsets. Queries whose probing would cost more than a fraction of a linear scan (e.g. on
    uniform random codes, MIH's worst case) are answered by the flat scan.

    Args:
        n_bits: code length in bits.
        n_tables: number of substrings ``m``; ``None`` picks it from the number of codes.

    Example:
        >>> index = MIHIndex(64)
        >>> index.add(db_codes)
        >>> distances, ids = index.search(query_codes, k=10)
    """

    def __init__(self, n_bits: int, n_tables: int | None = None):
        super().__init__(n_bits)
        if n_tables is not None:
            low = -(-self.n_bits // MAX_SUBSTRING_BITS)
            if (
                isinstance(n_tables, bool)
                or not isinstance(n_tables, (int, np.integer))
                or not (low <= n_tables <= self.n_bits)
            ):
                raise HashlearnInputError(
                    f"n_tables must be an integer in {low}..{self.n_bits} for {self.n_bits}-bit "
                    f"codes (substrings of at most {MAX_SUBSTRING_BITS} bits), got {n_tables!r}; "
                    "or None to choose it from the data size."
                )
            n_tables = int(n_tables)
        self.n_tables = n_tables

    def __repr__(self) -> str:
        return f"MIHIndex(n_bits={self.n_bits}, n_tables={self.n_tables}, ntotal={self.ntotal})"

    def _changed(self) -> None:
        self._tables: tuple | None = None
        self.n_tables_: int | None = None

    def _choose_tables(self, n: int) -> int:
        if self.n_tables is not None:
            return self.n_tables
        m = round(self.n_bits / math.log2(max(n, 2)))
        return int(min(self.n_bits, max(m, -(-self.n_bits // MAX_SUBSTRING_BITS), 1)))

    def _get_tables(self) -> tuple:
        if self._tables is None:
            self._tables = self._build()
        return self._tables

    def _build(self) -> tuple:
        n, words = self._ntotal, self._words[:, : self._ntotal]
        if n >= 2**32 - 1:
            raise HashlearnInputError(f"MIHIndex holds fewer than 2**32 codes, got {n}.")
        m = self._choose_tables(n)
        lens, runs, n_runs = substring_runs(self.n_bits, m)
        masks = substring_masks(runs, n_runs, self._n_words)
        direct = bool(2 ** int(lens.max()) <= 8 * n + 2**20)
        members = np.empty((m, n), dtype=np.uint32)
        tcodes = np.empty((m, n, self._n_words), dtype=np.uint64)
        offsets, keys = [], []
        for t in range(m):
            keys_t = table_keys(words, t, runs, n_runs)
            if direct:
                off, members[t] = counting_sort(keys_t, 1 << int(lens[t]))
            else:
                members[t] = np.argsort(keys_t, kind="stable")
                sorted_keys = keys_t[members[t]]
                starts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
                keys.append(sorted_keys[np.concatenate([[0], starts])] if n else sorted_keys)
                off = np.concatenate([[0], starts, [n]]).astype(np.uint32)
            offsets.append(off)
            tcodes[t] = words[:, members[t]].T
        off_start = np.concatenate([[0], np.cumsum([len(o) for o in offsets])]).astype(np.int64)
        key_start = np.concatenate([[0], np.cumsum([len(k) for k in keys] or [0] * m)])
        key_arr = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
        self.n_tables_ = m
        return (
            lens,
            runs,
            n_runs,
            masks,
            direct,
            np.concatenate(offsets),
            off_start,
            key_arr.astype(np.uint64),
            key_start.astype(np.int64),
            members,
            tcodes,
            ball_sizes(int(lens.max())),
        )

    def _budget(self) -> int:
        return int(max(MIN_BUDGET, self._ntotal * BUDGET_PER_CODE))

    def _knn_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        tables = self._get_tables()
        out_d = np.empty((len(queries), k), dtype=np.int32)
        out_i = np.empty((len(queries), k), dtype=np.int64)
        failed = np.zeros(len(queries), dtype=np.bool_)
        note_compile(mih_knn, what="multi-index hashing")
        mih_knn(
            self._query_words(queries), k, tables, self._budget(), self.n_bits, out_d, out_i, failed
        )
        if failed.any():
            out_d[failed], out_i[failed] = super()._knn_rows(queries[failed], k)
        self.n_scanned_ = int(failed.sum())
        return out_d, out_i

    def _range_rows(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tables, qwords, nq = self._get_tables(), self._query_words(queries), len(queries)
        counts = np.zeros(nq, dtype=np.int64)
        failed = np.zeros(nq, dtype=np.bool_)
        no_d, no_i = np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        note_compile(mih_range, what="multi-index hashing")
        mih_range(
            qwords,
            radius,
            tables,
            self._budget(),
            self.n_bits,
            np.empty(0, np.int64),
            no_d,
            no_i,
            counts,
            failed,
        )
        scanned = np.flatnonzero(failed)
        if len(scanned):
            s_lims, s_d, s_i = super()._range_rows(queries[scanned], radius)
            counts[scanned] = np.diff(s_lims)
        lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(counts, out=lims[1:])
        out_d = np.empty(lims[-1], dtype=np.int32)
        out_i = np.empty(lims[-1], dtype=np.int64)
        mih_range(
            qwords, radius, tables, self._budget(), self.n_bits, lims, out_d, out_i, counts, failed
        )
        for j, q in enumerate(scanned):
            out_d[lims[q] : lims[q + 1]] = s_d[s_lims[j] : s_lims[j + 1]]
            out_i[lims[q] : lims[q + 1]] = s_i[s_lims[j] : s_lims[j + 1]]
        self.n_scanned_ = len(scanned)
        return lims, out_d, out_i

    def _query_words(self, queries: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(to_words(queries))

    def _store_kind(self) -> tuple[str, int]:
        return "mih", self.n_tables or 0

    @classmethod
    def _from_header(cls, header: _store.StoreHeader) -> MIHIndex:
        return cls(header.n_bits, header.n_tables or None)

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: bool = False, verify: bool = True) -> MIHIndex:
        """Read a code store (written by any index's ``save``) into memory and index it.

        The tables are rebuilt from the codes (linear time); ``mmap=True`` is refused because
        the tables live in memory: use ``HammingIndex.load(path, mmap=True)`` for that.
        """
        if mmap:
            raise HashlearnInputError(
                "MIHIndex keeps its tables in memory and cannot search a store by memory maps; "
                "use HammingIndex.load(path, mmap=True) or MIHIndex.load(path)."
            )
        return super().load(path, mmap=False, verify=verify)  # type: ignore[return-value]
