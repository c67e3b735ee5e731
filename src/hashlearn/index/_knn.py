"""Exact Hamming k-nearest-neighbour kernel (numba, parallel over query blocks).

Hamming distances take only ``n_bits + 1`` values, so instead of a heap each query keeps one
bucket of at most ``k`` ids per distance and a pruning radius ``tau``: the smallest distance
at which ``k`` items have been seen. Items farther than ``tau`` are skipped with one compare.
The database is streamed in cache-sized chunks shared by a block of queries, so memory is
O(block × (n_bits + 1) × k) whatever the database size, and the scan order (increasing id)
makes ties come out sorted by id for free.
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn._bitops import block_distances

QUERY_BLOCK = 32
DB_CHUNK = 4096
SCAN_BLOCK = 512


@numba.njit(parallel=True, cache=True, nogil=True)
def knn_search(
    db_t: np.ndarray, queries: np.ndarray, k: int, n_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` by Hamming distance, ties by id.

    ``db_t`` holds the database as uint64 words, word-major (n_words, n_db); ``queries`` as
    (n_queries, n_words).
    """
    n_db = db_t.shape[1]
    n_q = queries.shape[0]
    out_d = np.empty((n_q, k), dtype=np.int32)
    out_i = np.empty((n_q, k), dtype=np.int64)
    n_blocks = (n_q + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        q0 = block * QUERY_BLOCK
        nq = min(n_q, q0 + QUERY_BLOCK) - q0
        buckets = np.empty((nq, n_bits + 1, k), dtype=np.int64)
        counts = np.zeros((nq, n_bits + 1), dtype=np.int64)
        tau = np.full(nq, n_bits, dtype=np.int64)
        n_kept = np.zeros(nq, dtype=np.int64)  # items kept with distance <= tau
        dist = np.empty(SCAN_BLOCK, dtype=np.uint32)
        for c0 in range(0, n_db, DB_CHUNK):
            c1 = min(n_db, c0 + DB_CHUNK)
            for qi in range(nq):
                query = queries[q0 + qi]
                t = tau[qi]
                kept = n_kept[qi]
                for s0 in range(c0, c1, SCAN_BLOCK):
                    s1 = min(c1, s0 + SCAN_BLOCK)
                    block_distances(query, db_t, s0, s1, dist)
                    # Vectorised minimum first: most blocks hold nothing within tau.
                    lowest = dist[0]
                    for j in range(1, s1 - s0):
                        lowest = min(lowest, dist[j])
                    if lowest > t:
                        continue
                    for j in range(s1 - s0):
                        d = dist[j]
                        if d <= t:
                            c = counts[qi, d]
                            if c < k:
                                buckets[qi, d, c] = s0 + j
                                counts[qi, d] = c + 1
                                kept += 1
                                # Shrink tau while k items lie strictly closer than it.
                                while t > 0 and kept - counts[qi, t] >= k:
                                    kept -= counts[qi, t]
                                    t -= 1
                tau[qi] = t
                n_kept[qi] = kept
        for qi in range(nq):
            filled = 0
            for d in range(tau[qi] + 1):
                for c in range(counts[qi, d]):
                    if filled == k:
                        break
                    out_d[q0 + qi, filled] = d
                    out_i[q0 + qi, filled] = buckets[qi, d, c]
                    filled += 1
    return out_d, out_i


@numba.njit(parallel=True, cache=True, nogil=True)
def knn_counting_sort(
    db_t: np.ndarray, queries: np.ndarray, k: int, n_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Same result as :func:`knn_search`, for large ``k``: one counting sort per query.

    The histogram of a query's distances gives every item its exact rank in the (distance,
    id) order, so items ranked below ``k`` are written straight to their slot. Memory is
    O(threads × n_db) instead of O(threads × n_bits × k).
    """
    n_db = db_t.shape[1]
    n_q = queries.shape[0]
    out_d = np.empty((n_q, k), dtype=np.int32)
    out_i = np.empty((n_q, k), dtype=np.int64)
    for qi in numba.prange(n_q):
        dist = np.empty(n_db, dtype=np.uint32)
        for s0 in range(0, n_db, DB_CHUNK):
            s1 = min(n_db, s0 + DB_CHUNK)
            block_distances(queries[qi], db_t, s0, s1, dist[s0:s1])
        position = np.zeros(n_bits + 1, dtype=np.int64)
        for j in range(n_db):
            position[dist[j]] += 1
        start = 0
        for d in range(n_bits + 1):
            count = position[d]
            position[d] = start
            start += count
        for j in range(n_db):
            d = dist[j]
            rank = position[d]
            if rank < k:
                out_d[qi, rank] = d
                out_i[qi, rank] = j
            position[d] = rank + 1
    return out_d, out_i


@numba.njit(parallel=True, cache=True, nogil=True)
def range_histogram(db_t: np.ndarray, queries: np.ndarray, radius: int) -> np.ndarray:
    """Per query, how many database items lie at each distance ``0 .. radius``."""
    n_db = db_t.shape[1]
    n_q = queries.shape[0]
    hist = np.zeros((n_q, radius + 1), dtype=np.int64)
    n_blocks = (n_q + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        q0 = block * QUERY_BLOCK
        q1 = min(n_q, q0 + QUERY_BLOCK)
        dist = np.empty(SCAN_BLOCK, dtype=np.uint32)
        for c0 in range(0, n_db, DB_CHUNK):
            c1 = min(n_db, c0 + DB_CHUNK)
            for qi in range(q0, q1):
                for s0 in range(c0, c1, SCAN_BLOCK):
                    s1 = min(c1, s0 + SCAN_BLOCK)
                    block_distances(queries[qi], db_t, s0, s1, dist)
                    for j in range(s1 - s0):
                        if dist[j] <= radius:
                            hist[qi, dist[j]] += 1
    return hist


@numba.njit(parallel=True, cache=True, nogil=True)
def range_fill(
    db_t: np.ndarray, queries: np.ndarray, radius: int, cursor: np.ndarray, out_d, out_i
) -> None:
    """Write every item within ``radius`` of each query to ``out_d`` / ``out_i``.

    ``cursor[q, d]`` is the first output slot of query ``q``'s hits at distance ``d`` (from
    :func:`range_histogram`); scanning in id order leaves each query's hits sorted by
    (distance, id).
    """
    n_db = db_t.shape[1]
    n_q = queries.shape[0]
    n_blocks = (n_q + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        q0 = block * QUERY_BLOCK
        q1 = min(n_q, q0 + QUERY_BLOCK)
        dist = np.empty(SCAN_BLOCK, dtype=np.uint32)
        for c0 in range(0, n_db, DB_CHUNK):
            c1 = min(n_db, c0 + DB_CHUNK)
            for qi in range(q0, q1):
                for s0 in range(c0, c1, SCAN_BLOCK):
                    s1 = min(c1, s0 + SCAN_BLOCK)
                    block_distances(queries[qi], db_t, s0, s1, dist)
                    for j in range(s1 - s0):
                        d = dist[j]
                        if d <= radius:
                            slot = cursor[qi, d]
                            out_d[slot] = d
                            out_i[slot] = s0 + j
                            cursor[qi, d] = slot + 1


def range_search_flat(
    db_t: np.ndarray, queries: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAISS-style ``(lims, distances, rows)``: hits of query ``q`` are ``lims[q]:lims[q+1]``."""
    hist = range_histogram(db_t, queries, radius)
    lims = np.zeros(len(queries) + 1, dtype=np.int64)
    np.cumsum(hist.sum(axis=1), out=lims[1:])
    cursor = lims[:-1, None] + np.cumsum(hist, axis=1) - hist
    out_d = np.empty(lims[-1], dtype=np.int32)
    out_i = np.empty(lims[-1], dtype=np.int64)
    range_fill(db_t, queries, radius, cursor, out_d, out_i)
    return lims, out_d, out_i
