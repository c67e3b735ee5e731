"""Retrieval metrics against hand-computed values, naive code and brute-force tie orders."""

import itertools

import numpy as np
import pytest

from hashlearn import hamming_distances, pack
from hashlearn._validation import HashlearnInputError
from hashlearn.metrics import (
    evaluate_retrieval,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
)

# One query at distances 0, 1, 1, 2 from four items; items 0, 2, 3 share its label.
QUERY = np.array([[-1, -1, -1]])
DATABASE = np.array([[-1, -1, -1], [1, -1, -1], [-1, 1, -1], [1, 1, -1]])
Q_LABEL, DB_LABELS = np.array([0]), np.array([0, 1, 0, 0])


def test_map_hand_computed_example():
    # Stable order 0, 1, 2, 3: relevant at ranks 1, 3, 4 -> (1/1 + 2/3 + 3/4) / 3.
    ap = mean_average_precision(QUERY, DATABASE, Q_LABEL, DB_LABELS)
    assert ap == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # Within the top 2 only rank 1 is relevant.
    assert mean_average_precision(QUERY, DATABASE, Q_LABEL, DB_LABELS, topk=2) == pytest.approx(1)


def test_tie_aware_hand_computed_example():
    # Items 1 and 2 tie at distance 1: item 2 is at rank 2 or 3 with equal probability.
    ap = mean_average_precision(QUERY, DATABASE, Q_LABEL, DB_LABELS, ties="aware")
    assert ap == pytest.approx((1 + (1 + 2 / 3) / 2 + 3 / 4) / 3)


def test_precision_recall_and_radius_hand_computed():
    assert precision_at_k(QUERY, DATABASE, Q_LABEL, DB_LABELS, k=2) == pytest.approx(0.5)
    assert precision_at_k(QUERY, DATABASE, Q_LABEL, DB_LABELS, k=3) == pytest.approx(2 / 3)
    assert recall_at_k(QUERY, DATABASE, Q_LABEL, DB_LABELS, k=3) == pytest.approx(2 / 3)
    # Expected relevant in the top 2 when ties are shuffled: 1 + 1/2.
    assert precision_at_k(QUERY, DATABASE, Q_LABEL, DB_LABELS, k=2, ties="aware") == pytest.approx(
        0.75
    )
    assert precision_within_radius(QUERY, DATABASE, Q_LABEL, DB_LABELS, r=1) == pytest.approx(2 / 3)
    curve = precision_recall_curve(QUERY, DATABASE, Q_LABEL, DB_LABELS, n_bits=3)
    np.testing.assert_allclose(curve.precision, [1, 2 / 3, 3 / 4, 3 / 4])
    np.testing.assert_allclose(curve.recall, [1 / 3, 2 / 3, 1, 1])


def naive_ap(distances, relevant, topk):
    order = np.lexsort((np.arange(len(distances)), distances))[:topk]
    hits = relevant[order]
    if hits.sum() == 0:
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


@pytest.mark.parametrize("topk", [None, 1, 25, 300])
@pytest.mark.parametrize("multilabel", [False, True])
def test_map_matches_naive_implementation(topk, multilabel):
    rng = np.random.default_rng(7)
    q_codes = pack(rng.choice([-1, 1], size=(40, 12)))
    db_codes = pack(rng.choice([-1, 1], size=(300, 12)))
    if multilabel:
        q_lab = (rng.random((40, 5)) < 0.3).astype(int)
        db_lab = (rng.random((300, 5)) < 0.3).astype(int)
        relevant = (q_lab @ db_lab.T) > 0
    else:
        q_lab, db_lab = rng.integers(0, 6, 40), rng.integers(0, 6, 300)
        relevant = q_lab[:, None] == db_lab[None, :]
    distances = hamming_distances(q_codes, db_codes)
    keep = relevant.any(axis=1)
    expected = np.mean(
        [naive_ap(distances[i], relevant[i], topk or 300) for i in np.flatnonzero(keep)]
    )
    score = mean_average_precision(q_codes, db_codes, q_lab, db_lab, topk=topk)
    assert score == pytest.approx(expected, abs=1e-12)
    assert score.n_evaluated == keep.sum() and score.n_excluded == (~keep).sum()


def brute_force_tie_aware_ap(distances, relevant, topk):
    groups = [np.flatnonzero(distances == d) for d in np.unique(distances)]
    numerators, counts = [], []
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = np.concatenate(perms)[:topk]
        hits = relevant[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        numerators.append((precision * hits).sum())
        counts.append(hits.sum())
    # No relevant item can reach the top k: AP is 0 by convention, as in the stable case.
    return np.mean(numerators) / np.mean(counts) if np.mean(counts) > 0 else 0.0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("topk", [None, 3])
def test_tie_aware_ap_matches_enumeration_of_tie_orders(seed, topk):
    rng = np.random.default_rng(seed)
    q_codes = pack(rng.choice([-1, 1], size=(1, 3)))
    db_codes = pack(rng.choice([-1, 1], size=(7, 3)))
    q_lab, db_lab = np.array([0]), rng.integers(0, 2, 7)
    db_lab[0] = 0  # at least one relevant item
    distances = hamming_distances(q_codes, db_codes)[0]
    expected = brute_force_tie_aware_ap(distances, db_lab == 0, topk or 7)
    got = mean_average_precision(q_codes, db_codes, q_lab, db_lab, topk=topk, ties="aware")
    assert got == pytest.approx(expected, rel=1e-12)


def test_queries_without_relevant_items_are_excluded_and_counted():
    q_lab = np.array([0, 9])  # class 9 does not occur in the database
    score = mean_average_precision(np.vstack([QUERY, QUERY]), DATABASE, q_lab, DB_LABELS)
    assert score.n_excluded == 1 and score.n_evaluated == 1
    assert np.isnan(score.per_query[1])
    assert score == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_evaluate_retrieval_agrees_with_single_metrics():
    rng = np.random.default_rng(11)
    q_codes, db_codes = rng.choice([-1, 1], size=(20, 16)), rng.choice([-1, 1], size=(150, 16))
    q_lab, db_lab = rng.integers(0, 3, 20), rng.integers(0, 3, 150)
    report = evaluate_retrieval(q_codes, db_codes, q_lab, db_lab, topk=50, k=10)
    assert report["map"] == pytest.approx(
        mean_average_precision(q_codes, db_codes, q_lab, db_lab, topk=50)
    )
    assert report["precision_at_k"] == pytest.approx(
        precision_at_k(q_codes, db_codes, q_lab, db_lab, k=10)
    )
    assert report["precision_within_radius"] == pytest.approx(
        precision_within_radius(q_codes, db_codes, q_lab, db_lab, r=2)
    )
    assert len(report["pr_curve"]["radius"]) == 17


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(topk=5), "larger than the database"),
        (dict(topk=0), "positive integer"),
        (dict(db_labels=np.array([0, 1, 0])), "one row per code"),
        (dict(query_codes=np.zeros((0, 1), np.uint8), query_labels=np.array([])), "empty"),
        (dict(db_labels=np.eye(4)), "different formats"),
        (dict(db_labels=np.array([0, 1.5, 0, 0])), "integer class ids"),
        (dict(query_codes=pack(np.ones((1, 12)))), "same model"),
        (dict(ties="random"), "unknown ties"),
    ],
)
def test_bad_input_gets_clear_errors(kwargs, message):
    args = dict(query_codes=QUERY, db_codes=DATABASE, query_labels=Q_LABEL, db_labels=DB_LABELS)
    args.update(kwargs)
    with pytest.raises(HashlearnInputError, match=message):
        mean_average_precision(**args)


def test_sparse_large_class_ids_are_handled_compactly():
    ids = np.array([0, 10**12, 10**12, 10**12])
    ap = mean_average_precision(QUERY, DATABASE, np.array([10**12]), ids)
    # Relevant at ranks 2, 3, 4 of the stable order: (1/2 + 2/3 + 3/4) / 3.
    assert ap == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
