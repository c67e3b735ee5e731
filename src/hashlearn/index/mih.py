"""Exact k-NN and range search by multi-index hashing, with results identical to the flat scan."""

from __future__ import annotations

import math
import os

import numpy as np

from hashlearn._bitops import to_words
from hashlearn._jit import note_compile
from hashlearn._validation import HashlearnInputError
from hashlearn.index import _store
from hashlearn.index._knn import range_search_flat
from hashlearn.index._mih import (
    ball_sizes,
    counting_sort,
    mih_knn,
    mih_range,
    substring_masks,
    substring_runs,
    table_keys,
)
from hashlearn.index.hamming import HammingIndex, merge_range_parts, scan_knn

MAX_SUBSTRING_BITS = 32
# A query whose probing work (8 per bucket lookup + 1 per candidate) passes
# max(MIN_BUDGET, ntotal * BUDGET_PER_CODE) is answered by the flat scan instead.
BUDGET_PER_CODE = 1 / 4
MIN_BUDGET = 256
# Codes added since the tables were built are scanned linearly, and removed ones skipped, until
# together they pass max(MIN_PENDING, PENDING_FRACTION * rows in the tables); the next search
# then rebuilds. Amortised, an added code costs 1 / PENDING_FRACTION table insertions.
MIN_PENDING = 4096
PENDING_FRACTION = 1 / 16
# Codes up to this length get one copy per table in key order (contiguous buckets); longer ones
# share one row-major copy, so the tables cost about m * 4 bytes per code instead of m * (4 +
# code bytes).
COPY_CODES_MAX_BITS = 128


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
    members' row numbers (uint32) and, up to ``COPY_CODES_MAX_BITS`` = 128 bits, their full
    codes in key order (longer codes share one row-major copy). They are built on the first
    search, with ``m`` from the paper's rule ``m = b / log2(n)`` (TPAMI 2014, Sec. 4.1; we
    round to the nearest integer and keep substrings at most 32 bits) unless ``n_tables`` is
    given. Memory (:attr:`tables_nbytes`) is about ``m × (code bytes + 4)`` bytes per code up
    to 128 bits, ``code bytes + 4 m`` beyond, plus the offsets. Queries whose probing would
    cost more than a fraction of a linear scan (e.g. on uniform random codes, MIH's worst
    case) are answered by the flat scan.

    Updates are incremental (our choice): added codes are scanned linearly next to the tables
    and removed ones skipped, until together they pass ``max(MIN_PENDING, PENDING_FRACTION ×
    n)``; only then does a search rebuild the tables. Results stay exact throughout.

    Which index to use: :func:`recommend_index`.

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
        self._n_dead = 0  # table rows removed since the build
        self._row_map: np.ndarray | None = None  # table row -> current row (after removals)

    def _rows_added(self, first: int) -> None:
        """Appended rows stay outside the tables and are scanned, until the next rebuild."""

    def _rows_removed(self, keep: np.ndarray) -> None:
        """Mark removed table rows dead in place; removed pending rows simply go."""
        if self._tables is None:
            return
        alive = self._tables[12]
        live_rows = np.flatnonzero(alive)  # current rows 0 .. n_live - 1 are these table rows
        dead = live_rows[~keep[: len(live_rows)]]
        if len(dead):
            alive[dead] = 0
            self._n_dead += len(dead)
            self._tables = self._tables[:13] + (True,) + self._tables[14:]
            self._row_map = None

    def _n_live(self) -> int:
        """Current rows held by the tables: rows 0 .. n_live - 1; the rest are pending."""
        return 0 if self._tables is None else len(self._tables[12]) - self._n_dead

    def _choose_tables(self, n: int) -> int:
        if self.n_tables is not None:
            return self.n_tables
        m = round(self.n_bits / math.log2(max(n, 2)))
        return int(min(self.n_bits, max(m, -(-self.n_bits // MAX_SUBSTRING_BITS), 1)))

    def _get_tables(self) -> tuple:
        if self._tables is not None:
            built = len(self._tables[12])
            pending = self._ntotal - self._n_live() + self._n_dead
            if pending > max(MIN_PENDING, PENDING_FRACTION * built):
                self._changed()
        if self._tables is None:
            self._tables = self._build()
        return self._tables

    def _table_rows(self, rows: np.ndarray) -> np.ndarray:
        """Current row numbers of table rows (identity until a removal)."""
        if not self._n_dead:
            return rows
        if self._row_map is None:
            self._row_map = np.cumsum(self._tables[12], dtype=np.int64) - 1
        return self._row_map[rows]

    def _build(self) -> tuple:
        n, words = self._ntotal, self._words[:, : self._ntotal]
        if n >= 2**32 - 1:
            raise HashlearnInputError(f"MIHIndex holds fewer than 2**32 codes, got {n}.")
        m = self._choose_tables(n)
        lens, runs, n_runs = substring_runs(self.n_bits, m)
        masks = substring_masks(runs, n_runs, self._n_words)
        direct = bool(2 ** int(lens.max()) <= 8 * n + 2**20)
        shared = self.n_bits > COPY_CODES_MAX_BITS
        members = np.empty((m, n), dtype=np.uint32)
        tcodes = np.empty((1 if shared else m, n, self._n_words), dtype=np.uint64)
        if shared:
            tcodes[0] = words.T
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
            if not shared:
                tcodes[t] = words[:, members[t]].T
        off_start = np.concatenate([[0], np.cumsum([len(o) for o in offsets])]).astype(np.int64)
        key_start = np.concatenate([[0], np.cumsum([len(k) for k in keys] or [0] * m)])
        key_arr = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64)
        self.n_tables_ = m
        self._n_dead, self._row_map = 0, None
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
            np.ones(n, dtype=np.uint8),  # alive
            False,  # any dead rows
            shared,
        )

    @property
    def tables_nbytes(self) -> int:
        """Bytes held by the search tables (0 before the first search builds them)."""
        if self._tables is None:
            return 0
        return int(sum(a.nbytes for a in self._tables if isinstance(a, np.ndarray)))

    def _budget(self) -> int:
        return int(max(MIN_BUDGET, self._ntotal * BUDGET_PER_CODE))

    def _knn_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        tables, qwords = self._get_tables(), self._query_words(queries)
        n_live = self._n_live()
        kt = min(k, n_live)
        out_d = np.empty((len(queries), kt), dtype=np.int32)
        out_i = np.empty((len(queries), kt), dtype=np.int64)
        failed = np.zeros(len(queries), dtype=np.bool_)
        if kt:
            note_compile(mih_knn, what="multi-index hashing")
            mih_knn(qwords, kt, tables, self._budget(), self.n_bits, out_d, out_i, failed)
            out_i[failed] = 0  # unset rows: the flat scan answers these queries below
            out_i = self._table_rows(out_i)
        if n_live < self._ntotal:  # pending rows: scan them, merge (they come after, by row)
            pd, pi = scan_knn(self._words[:, n_live : self._ntotal], qwords, k, self.n_bits)
            cat_d, cat_i = np.hstack([out_d, pd]), np.hstack([out_i, pi + n_live])
            order = np.argsort(cat_d, axis=1, kind="stable")[:, :k]
            out_d = np.take_along_axis(cat_d, order, axis=1)
            out_i = np.take_along_axis(cat_i, order, axis=1)
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
        if self._n_dead:  # table rows -> current rows, before the scanned queries fill in
            is_table = np.ones(len(out_i), dtype=bool)
            for q in scanned:
                is_table[lims[q] : lims[q + 1]] = False
            out_i[is_table] = self._table_rows(out_i[is_table])
        for j, q in enumerate(scanned):
            out_d[lims[q] : lims[q + 1]] = s_d[s_lims[j] : s_lims[j + 1]]
            out_i[lims[q] : lims[q + 1]] = s_i[s_lims[j] : s_lims[j + 1]]
        self.n_scanned_ = len(scanned)
        n_live = self._n_live()
        if n_live == self._ntotal:
            return lims, out_d, out_i
        # Pending rows, for the queries the tables answered (a scanned one covered every row).
        p_lims, p_d, p_i = range_search_flat(self._words[:, n_live : self._ntotal], qwords, radius)
        p_counts = np.diff(p_lims)
        p_counts[scanned] = 0
        keep = np.repeat(p_counts > 0, np.diff(p_lims))
        p_lims = np.zeros(nq + 1, dtype=np.int64)
        np.cumsum(p_counts, out=p_lims[1:])
        parts = [(lims, out_d, out_i), (p_lims, p_d[keep], p_i[keep] + n_live)]
        return merge_range_parts(parts, nq)

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


def recommend_index(n_bits: int, ntotal: int) -> str:
    """``"mih"`` or ``"flat"`` for ``ntotal`` codes of ``n_bits`` bits: a rule of thumb.

    MIH certifies the k-th neighbour at distance ``d`` by probing every table within substring
    radius ``d // m``; it pays off when neighbours are close in bits relative to ``m ≈ n_bits /
    log2(ntotal)``: short codes, many codes, small k, clustered data (measured in
    ``benchmarks/bench_search.py``: 8× the flat scan at 1 M and 105× at 10 M clustered 64-bit
    codes, k = 10; 1.0× on uniform random codes, where it falls back to the scan). At 256 bits
    and more, neighbours of real embeddings lie tens of bits apart, every table is probed at a
    large radius and MIH was 2–3× slower than the flat scan at 1,000 bits, with far more
    memory. So: MIH for codes of at most 128 bits and at least 100,000 of them, else flat
    (our thresholds; measure on your codes with both, the results are identical).
    """
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise HashlearnInputError(f"n_bits must be a positive integer, got {n_bits!r}.")
    if isinstance(ntotal, bool) or not isinstance(ntotal, (int, np.integer)) or ntotal < 0:
        raise HashlearnInputError(f"ntotal must be a non-negative integer, got {ntotal!r}.")
    return "mih" if n_bits <= COPY_CODES_MAX_BITS and ntotal >= 100_000 else "flat"
