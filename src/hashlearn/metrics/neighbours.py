"""Neighbour metrics: exact float k-NN ground truth and the recall of any retrieved id lists.

These score a binary code (or any index) by how many of the *exact* nearest neighbours of the
float vectors it finds, the measure of the vector-search literature ("recall@10": the fraction
of the true 10 nearest neighbours found among the 10 ids returned; "10@R": among R returned).
No labels are needed. Two ground truths:

* :func:`exact_knn`: the exact k nearest database vectors of each query by cosine similarity,
  inner product or Euclidean distance; blocked (memory bounded whatever the database size) and
  deterministic, ties broken by smaller database id.
* :func:`euclidean_ground_truth`: the Euclidean-neighbour protocol of ITQ (Gong & Lazebnik,
  CVPR 2011, §4; TPAMI 2013): a database item is a true neighbour of a query when it lies within
  a nominal radius, the average distance to the 50th nearest neighbour. Averaging over the
  queries (rather than over a separate training sample, as spectral hashing's evaluation code
  does) is our default; pass ``reference`` to average over other rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._float_vectors import METRICS, check_vectors, pair_scores, prepared, top_k
from hashlearn._validation import HashlearnInputError, check_choice

#: Bytes of the float64 score block computed at a time (query block × database block).
BLOCK_BYTES = 32 * 2**20


def exact_knn(
    queries: Any, database: Any, k: int, metric: str = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest database vectors of every query: ``(scores, ids)``, (n_q, k).

    ``scores`` are cosine similarities or inner products (descending) for ``cosine`` / ``ip``
    and squared Euclidean distances (ascending) for ``l2``; ``ids`` are database row numbers,
    equal scores ordered by smaller id. Computed in float64 over blocks of at most
    :data:`BLOCK_BYTES`, so memory stays bounded for any database size.

    Raises:
        HashlearnInputError: for NaN rows, zero rows with cosine, mismatched dimensions, or
            ``k`` not in ``1 .. len(database)``.
    """
    metric = check_choice(metric, METRICS, "metric")
    D = check_vectors(database, "database", metric=metric)
    Q = check_vectors(queries, "queries", dim=D.shape[1], metric=metric)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(D):
        raise HashlearnInputError(
            f"k must be an integer in 1..{len(D)} (the database size), got {k!r}."
        )
    Q, D = prepared(Q, metric), prepared(D, metric)
    q_rows = max(1, min(len(Q), 1024))
    d_rows = max(k, BLOCK_BYTES // (8 * q_rows))
    out_s = np.empty((len(Q), k))
    out_i = np.empty((len(Q), k), dtype=np.int64)
    for qs in range(0, len(Q), q_rows):
        best_s = best_i = None
        for ds in range(0, len(D), d_rows):
            block = pair_scores(Q[qs : qs + q_rows], D[ds : ds + d_rows], metric)
            ids = np.arange(ds, ds + block.shape[1], dtype=np.int64)[None, :]
            s, i = top_k(block, ids, min(k, block.shape[1]))
            if best_s is not None:
                s, i = top_k(np.hstack([best_s, s]), np.hstack([best_i, i]), k)
            best_s, best_i = s, i
        out_s[qs : qs + q_rows], out_i[qs : qs + q_rows] = best_s, best_i
    if metric == "l2":
        out_s = np.maximum(-out_s, 0.0)
    return out_s, out_i


def _check_id_lists(true_ids: Any, retrieved_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    t, r = np.asarray(true_ids), np.asarray(retrieved_ids)
    for name, arr in (("true_ids", t), ("retrieved_ids", r)):
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
            raise HashlearnInputError(
                f"{name} must be a 2-D integer array (n_queries, n_ids), got shape {arr.shape} "
                f"and dtype {arr.dtype}."
            )
    if len(t) != len(r):
        raise HashlearnInputError(
            f"true_ids has {len(t)} queries but retrieved_ids has {len(r)}; pass one row per "
            "query in the same order."
        )
    return t, r


def _hits(t: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per query, how many ids of ``t`` appear in ``r`` (-1 in ``r`` marks a missing result)."""
    match = (t[:, :, None] == r[:, None, :]) & (r[:, None, :] >= 0)
    return match.any(axis=2).sum(axis=1)


def knn_recall(true_ids: Any, retrieved_ids: Any, k: int | None = None) -> float:
    """Recall k@R: the mean fraction of each query's true ``k`` nearest neighbours found among
    its R retrieved ids (R = ``retrieved_ids.shape[1]``); recall@k when R = k.

    Args:
        true_ids: exact neighbours, nearest first (e.g. ``exact_knn(...)[1]``), (n_q, ≥ k).
        retrieved_ids: what an index returned, (n_q, R); -1 marks a missing result.
        k: how many true neighbours count (default: all columns of ``true_ids``).
    """
    t, r = _check_id_lists(true_ids, retrieved_ids)
    k = t.shape[1] if k is None else k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= t.shape[1]:
        raise HashlearnInputError(f"k must be an integer in 1..{t.shape[1]}, got {k!r}.")
    return float(np.mean(_hits(t[:, :k], r) / k))


def knn_precision(true_ids: Any, retrieved_ids: Any, k: int | None = None) -> float:
    """Precision: the mean fraction of the R retrieved ids that are among the true ``k``
    nearest neighbours (missing results, -1, count as wrong)."""
    t, r = _check_id_lists(true_ids, retrieved_ids)
    k = t.shape[1] if k is None else k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= t.shape[1]:
        raise HashlearnInputError(f"k must be an integer in 1..{t.shape[1]}, got {k!r}.")
    return float(np.mean(_hits(t[:, :k], r) / r.shape[1]))


def euclidean_ground_truth(
    queries: Any,
    database: Any,
    *,
    n_neighbours: int = 50,
    radius: float | None = None,
    reference: Any = None,
) -> tuple[np.ndarray, float]:
    """ITQ's Euclidean ground truth (Gong & Lazebnik, CVPR 2011, §4): ``(relevant, radius)``.

    ``relevant[q, j]`` is True when database item ``j`` lies within Euclidean distance
    ``radius`` of query ``q``. Without ``radius``, it is the nominal threshold of the paper:
    the mean distance from each row of ``reference`` (default: the queries) to its
    ``n_neighbours``-th nearest database item (50 in the paper). ``relevant`` can be scored
    with :func:`relevant_recall_precision`.
    """
    D = check_vectors(database, "database")
    Q = check_vectors(queries, "queries", dim=D.shape[1])
    if radius is None:
        R = Q if reference is None else check_vectors(reference, "reference", dim=D.shape[1])
        squared = exact_knn(R, D, n_neighbours, metric="l2")[0][:, -1]
        radius = float(np.mean(np.sqrt(squared)))
    elif not np.isfinite(radius) or radius < 0:
        raise HashlearnInputError(f"radius must be a non-negative number, got {radius!r}.")
    Qp, Dp = prepared(Q, "l2"), prepared(D, "l2")
    relevant = np.empty((len(Q), len(D)), dtype=bool)
    rows = max(1, BLOCK_BYTES // (8 * len(D)))
    for s in range(0, len(Q), rows):
        relevant[s : s + rows] = -pair_scores(Qp[s : s + rows], Dp, "l2") <= radius**2
    return relevant, radius


def relevant_recall_precision(relevant: Any, retrieved_ids: Any) -> tuple[float, float]:
    """Mean recall and precision of retrieved id lists against a boolean relevance matrix
    (n_q, n_db), e.g. from :func:`euclidean_ground_truth`; queries without any relevant item
    are left out of the recall mean, as in the label metrics."""
    rel = np.asarray(relevant, dtype=bool)
    r = np.asarray(retrieved_ids)
    if rel.ndim != 2 or r.ndim != 2 or len(rel) != len(r):
        raise HashlearnInputError(
            f"relevant (n_q, n_db) and retrieved_ids (n_q, R) need one row per query, got "
            f"shapes {rel.shape} and {r.shape}."
        )
    valid = r >= 0
    hits = (np.take_along_axis(rel, np.where(valid, r, 0), axis=1) & valid).sum(axis=1)
    totals = rel.sum(axis=1)
    has = totals > 0
    recall = float(np.mean(hits[has] / totals[has])) if has.any() else float("nan")
    return recall, float(np.mean(hits / r.shape[1]))
