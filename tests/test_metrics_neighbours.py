"""Neighbour metrics: exact float k-NN against a naive full sort, recall/precision of id lists,
ITQ's Euclidean ground truth, and their input errors."""

import numpy as np
import pytest

from hashlearn._validation import HashlearnInputError
from hashlearn.metrics import (
    euclidean_ground_truth,
    exact_knn,
    knn_precision,
    knn_recall,
    neighbours,
    relevant_recall_precision,
)


def naive_knn(Q, D, k, metric):
    Q, D = Q.astype(np.float64), D.astype(np.float64)
    if metric == "cosine":
        Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        D = D / np.linalg.norm(D, axis=1, keepdims=True)
    if metric == "l2":
        key = ((Q[:, None, :] - D[None, :, :]) ** 2).sum(-1)
    else:
        key = -(Q @ D.T)
    ids = np.array([sorted(range(len(D)), key=lambda j: (round(row[j], 9), j))[:k] for row in key])
    return ids


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_exact_knn_matches_naive_sort_across_blocks(metric, monkeypatch):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((300, 8))
    Q = rng.standard_normal((7, 8))
    want = naive_knn(Q, D, 10, metric)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 8 * 7 * 23)  # 23-row database blocks
    scores, ids = exact_knn(Q, D, 10, metric=metric)
    np.testing.assert_array_equal(ids, want)
    step = np.diff(scores, axis=1)
    assert (step >= -1e-12).all() if metric == "l2" else (step <= 1e-12).all()


def test_exact_knn_ties_by_id_and_l2_distances():
    D = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    scores, ids = exact_knn([[1.0, 0.0]], D, 4, metric="cosine")
    np.testing.assert_array_equal(ids, [[0, 2, 3, 4]])  # four exact ties, by id
    d2, ids = exact_knn([[1.0, 0.0]], D, 5, metric="l2")
    np.testing.assert_array_equal(ids, [[0, 2, 4, 3, 1]])  # distances² 0, 0, 0, 2, 1
    np.testing.assert_allclose(np.sort(d2[0]), [0, 0, 0, 1, 2], atol=1e-12)


def test_recall_and_precision_of_id_lists():
    true = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    got = np.array([[0, 9, 2, 8, 1, -1], [7, 6, 5, 4, 3, 2]])
    # query 0 finds 0, 2, 1 of its 4 (3/4); query 1 finds all 4.
    assert knn_recall(true, got) == pytest.approx((3 / 4 + 1) / 2)
    assert knn_recall(true, got[:, :2], k=2) == pytest.approx((1 / 2 + 0) / 2)
    assert knn_precision(true, got) == pytest.approx((3 / 6 + 4 / 6) / 2)


def test_euclidean_ground_truth_radius_and_scores():
    rng = np.random.default_rng(1)
    D = rng.standard_normal((200, 5))
    Q = rng.standard_normal((9, 5))
    relevant, radius = euclidean_ground_truth(Q, D, n_neighbours=20)
    dist = np.sqrt(((Q[:, None] - D[None]) ** 2).sum(-1))
    assert radius == pytest.approx(np.sort(dist, axis=1)[:, 19].mean())
    np.testing.assert_array_equal(relevant, dist <= radius)
    # Retrieving by exact distance finds the relevant items first.
    order = np.argsort(dist, axis=1)[:, :10]
    recall, precision = relevant_recall_precision(relevant, order)
    totals = relevant.sum(1)
    assert precision == pytest.approx(np.mean(np.minimum(totals, 10) / 10))
    assert recall == pytest.approx(np.mean(np.minimum(totals, 10) / totals))


@pytest.mark.parametrize(
    "queries, database, metric, match",
    [
        (np.ones((2, 3)), np.ones((5, 4)), "cosine", "queries has dimension 3"),
        ([[np.nan, 1.0]], np.ones((5, 2)), "ip", "queries row 0 holds NaN"),
        (
            np.ones((2, 2)),
            np.vstack([np.ones((3, 2)), np.zeros((1, 2))]),
            "cosine",
            "row 3 is all zeros",
        ),
        (np.ones((2, 2)), np.ones((5, 2)), "hamming", "metric"),
    ],
)
def test_exact_knn_bad_input(queries, database, metric, match):
    with pytest.raises(HashlearnInputError, match=match):
        exact_knn(queries, database, 2, metric=metric)


def test_exact_knn_k_and_zero_rows_allowed_for_l2():
    with pytest.raises(HashlearnInputError, match="k must be an integer in 1..5"):
        exact_knn(np.ones((1, 2)), np.ones((5, 2)), 6)
    exact_knn(np.zeros((1, 2)), np.ones((5, 2)), 2, metric="l2")  # zero rows are fine for L2
