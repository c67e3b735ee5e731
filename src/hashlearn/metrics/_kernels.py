"""Numba kernels behind :mod:`hashlearn.metrics`: one linear pass per query, no sorting.

For each query the database distances are bucketed by value (Hamming distances take only
``n_bits + 1`` values). The bucket histograms of all and of relevant items give every
radius-based metric and the tie-aware metrics; a second pass in id order gives each item's
exact rank under the stable tie rule (distance, then id), i.e. a counting sort done implicitly.
"""

from __future__ import annotations

import numba
import numpy as np

from hashlearn._bitops import block_distances

SCAN = 2048


@numba.njit(cache=True, nogil=True)
def _scan_query(
    query: np.ndarray, query_labels: np.ndarray, db_t: np.ndarray, db_labels_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Hamming distance of one query to every database item (scanned in blocks of SCAN) and
    whether each item shares a label with it."""
    n = db_t.shape[1]
    dist = np.empty(n, dtype=np.uint32)
    relevant = np.zeros(n, dtype=np.bool_)
    for s0 in range(0, n, SCAN):
        s1 = min(n, s0 + SCAN)
        block_distances(query, db_t, s0, s1, dist[s0:s1])
    for w in range(db_labels_t.shape[0]):
        mask = query_labels[w]
        row = db_labels_t[w]
        for j in range(n):
            if row[j] & mask:
                relevant[j] = True
    return dist, relevant


@numba.njit(parallel=True, cache=True, nogil=True)
def query_statistics(
    queries: np.ndarray,
    db_t: np.ndarray,
    query_labels: np.ndarray,
    db_labels_t: np.ndarray,
    n_bits: int,
    topk: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-query histograms and stable-order AP@topk.

    Args:
        queries: (m, w) uint64 code words; ``db_t``: (w, n) uint64, word-major.
        query_labels: (m, l) uint64 label bitmasks; ``db_labels_t``: (l, n), word-major.
            Two items are relevant when their label masks share a bit.

    Returns:
        ``hist_all`` and ``hist_rel`` (m, n_bits + 1): counts of all / relevant database items
        at each distance; ``ap_sum`` (m,): sum of precision at each relevant rank < topk
        under the stable order; ``rel_top`` (m,): relevant items among the first topk.
    """
    m = queries.shape[0]
    n = db_t.shape[1]
    hist_all = np.zeros((m, n_bits + 1), dtype=np.int64)
    hist_rel = np.zeros((m, n_bits + 1), dtype=np.int64)
    ap_sum = np.zeros(m, dtype=np.float64)
    rel_top = np.zeros(m, dtype=np.int64)
    for qi in numba.prange(m):
        dist, relevant = _scan_query(queries[qi], query_labels[qi], db_t, db_labels_t)
        for j in range(n):
            hist_all[qi, dist[j]] += 1
            if relevant[j]:
                hist_rel[qi, dist[j]] += 1
        # Stable order: rank = items at smaller distance + items at equal distance, lower id.
        rank_start = np.zeros(n_bits + 1, dtype=np.int64)
        rel_start = np.zeros(n_bits + 1, dtype=np.int64)
        for d in range(1, n_bits + 1):
            rank_start[d] = rank_start[d - 1] + hist_all[qi, d - 1]
            rel_start[d] = rel_start[d - 1] + hist_rel[qi, d - 1]
        seen = np.zeros(n_bits + 1, dtype=np.int64)
        rel_seen = np.zeros(n_bits + 1, dtype=np.int64)
        total = 0.0
        found = 0
        for j in range(n):
            d = dist[j]
            if rank_start[d] + seen[d] >= topk:
                seen[d] += 1
                continue
            rank = rank_start[d] + seen[d]
            seen[d] += 1
            if relevant[j]:
                rel_seen[d] += 1
                total += (rel_start[d] + rel_seen[d]) / (rank + 1.0)
                found += 1
        ap_sum[qi] = total
        rel_top[qi] = found
    return hist_all, hist_rel, ap_sum, rel_top


@numba.njit(cache=True, nogil=True)
def tie_aware_ap(
    hist_all: np.ndarray, hist_rel: np.ndarray, topk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected AP@topk numerator and expected relevant count in the top ``topk``.

    Items at equal distance are in uniformly random order (McSherry & Najork, ECIR 2008; used for
    hashing by He et al., CVPR 2018). A relevant item at offset ``y`` of a tie group of ``n_d``
    items (``r_d`` relevant), after ``N`` items of which ``R`` are relevant, has expected
    precision (R + 1 + y (r_d − 1)/(n_d − 1)) / (N + 1 + y); each offset has probability 1/n_d.
    """
    m, n_values = hist_all.shape
    numerator = np.zeros(m, dtype=np.float64)
    expected_rel = np.zeros(m, dtype=np.float64)
    for qi in range(m):
        before = 0
        rel_before = 0
        for d in range(n_values):
            n_d = hist_all[qi, d]
            if n_d == 0:
                continue
            if before >= topk:
                break
            r_d = hist_rel[qi, d]
            if r_d > 0:
                share = (r_d - 1.0) / (n_d - 1.0) if n_d > 1 else 0.0
                last = min(n_d, topk - before)
                acc = 0.0
                for y in range(last):
                    acc += (rel_before + 1.0 + y * share) / (before + 1.0 + y)
                numerator[qi] += r_d * acc / n_d
                expected_rel[qi] += r_d * last / n_d
            before += n_d
            rel_before += r_d
    return numerator, expected_rel


@numba.njit(parallel=True, cache=True, nogil=True)
def continuous_order_ap(
    queries: np.ndarray,
    db_t: np.ndarray,
    query_labels: np.ndarray,
    db_labels_t: np.ndarray,
    similarity: np.ndarray,
    n_bits: int,
    topk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """AP@topk sum and relevant count in the top ``topk`` under the continuous tie rule.

    The database is ranked by Hamming distance, items at equal distance by decreasing
    ``similarity[q, j]`` (cosine of the continuous embeddings), then by id: a stable sort on
    the similarity followed by a stable counting sort on the distance. Arguments as
    :func:`query_statistics`; ``similarity`` is (m, n) float64.
    """
    m = queries.shape[0]
    n = db_t.shape[1]
    ap_sum = np.zeros(m, dtype=np.float64)
    rel_top = np.zeros(m, dtype=np.int64)
    for qi in numba.prange(m):
        dist, relevant = _scan_query(queries[qi], query_labels[qi], db_t, db_labels_t)
        by_similarity = np.argsort(-similarity[qi], kind="mergesort")
        start = np.zeros(n_bits + 2, dtype=np.int64)
        for j in range(n):
            start[dist[j] + 1] += 1
        for d in range(1, n_bits + 2):
            start[d] += start[d - 1]
        ranked = np.empty(n, dtype=np.int64)
        for j in by_similarity:
            d = dist[j]
            ranked[start[d]] = j
            start[d] += 1
        total = 0.0
        found = 0
        for rank in range(topk):
            if relevant[ranked[rank]]:
                found += 1
                total += found / (rank + 1.0)
        ap_sum[qi] = total
        rel_top[qi] = found
    return ap_sum, rel_top
