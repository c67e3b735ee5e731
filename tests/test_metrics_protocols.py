"""The papers' metric rules: continuous tie breaking (H²Q) and AP normalisation (CalcTopMap)."""

import numpy as np
import pytest

from hashlearn._validation import HashlearnInputError
from hashlearn.metrics import (
    evaluate_retrieval,
    mean_average_precision,
    precision_at_k,
    recall_at_k,
)


def calc_top_map(q_signs, db_signs, q_hot, db_hot, topk):
    """DeepHash-pytorch's ``CalcTopMap`` formula (swuxyj/DeepHash-pytorch utils/tools.py),
    written independently, with a stable sort for the Hamming ranking."""
    n_bits = q_signs.shape[1]
    total = 0.0
    for q in range(len(q_signs)):
        gnd = (q_hot[q] @ db_hot.T > 0).astype(float)
        hamm = 0.5 * (n_bits - q_signs[q] @ db_signs.T)
        tgnd = gnd[np.argsort(hamm, kind="stable")][:topk]
        tsum = int(tgnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.flatnonzero(tgnd == 1) + 1.0
        total += np.mean(count / tindex)
    return total / len(q_signs)


def h2q_map_at(q_feat, db_feat, q_hot, db_hot, k):
    """The H²Q authors' ``mAP_at_many`` rule (Lucas-Schwengber/h2q src/utils/eval_utils.py),
    written independently: signs of the features as codes, ``10 * hamming + ‖q̂ − d̂‖²`` as
    the ranking key, AP over the first k, summed over queries and divided by their number."""
    q_feat = q_feat / np.linalg.norm(q_feat, axis=1, keepdims=True)
    db_feat = db_feat / np.linalg.norm(db_feat, axis=1, keepdims=True)
    q_signs, db_signs = np.sign(q_feat), np.sign(db_feat)
    n_bits = q_feat.shape[1]
    total = 0.0
    for q in range(len(q_feat)):
        rel = (q_hot[q] @ db_hot.T > 0).astype(float)
        if rel.sum() == 0:
            continue
        hamm = 0.5 * (n_bits - q_signs[q] @ db_signs.T)
        eucl = ((q_feat[q] - db_feat) ** 2).sum(axis=1)
        rel = rel[np.argsort(10 * hamm + eucl, kind="stable")][:k]
        pos = np.flatnonzero(rel == 1) + 1.0
        if len(pos):
            total += np.sum(np.arange(1, len(pos) + 1) / pos) / len(pos)
    return total / len(q_feat)


def multilabel(rng, n, n_classes, p):
    hot = rng.random((n, n_classes)) < p
    return hot.astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_relevant_zero_equals_calc_top_map_and_skip_differs(seed):
    rng = np.random.default_rng(seed)
    n_bits, n_classes = 16, 8
    q = np.where(rng.standard_normal((60, n_bits)) >= 0, 1, -1)
    db = np.where(rng.standard_normal((300, n_bits)) >= 0, 1, -1)
    q_hot, db_hot = multilabel(rng, 60, n_classes, 0.08), multilabel(rng, 300, n_classes, 0.15)
    no_rel = (q_hot @ db_hot.T > 0).sum(axis=1) == 0
    assert no_rel.any() and not no_rel.all()  # the data set exercises both kinds of queries
    for topk in (None, 50):
        zero = mean_average_precision(q, db, q_hot, db_hot, topk=topk, no_relevant="zero")
        skip = mean_average_precision(q, db, q_hot, db_hot, topk=topk, no_relevant="skip")
        expected = calc_top_map(q, db, q_hot, db_hot, topk or len(db))
        assert zero == pytest.approx(expected, abs=1e-12)
        # "zero" averages the same per-query values with zeros for the queries left out.
        assert zero == pytest.approx(skip * (~no_rel).sum() / len(q), abs=1e-12)
        assert zero < skip
        assert zero.n_excluded == 0 and skip.n_excluded == int(no_rel.sum())
    p_zero = precision_at_k(q, db, q_hot, db_hot, k=20, no_relevant="zero")
    p_skip = precision_at_k(q, db, q_hot, db_hot, k=20)
    assert p_zero == pytest.approx(p_skip * (~no_rel).sum() / len(q), abs=1e-12)
    r_zero = recall_at_k(q, db, q_hot, db_hot, k=20, no_relevant="zero")
    assert np.all(r_zero.per_query[no_rel] == 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_continuous_ties_equal_the_h2q_rule(seed):
    rng = np.random.default_rng(seed)
    n_bits = 8  # few bits: many Hamming ties, which the continuous distance then orders
    centres = rng.standard_normal((5, n_bits))
    q_y, db_y = rng.integers(0, 5, 40), rng.integers(0, 5, 400)
    q_feat = centres[q_y] + 1.2 * rng.standard_normal((40, n_bits))
    db_feat = centres[db_y] + 1.2 * rng.standard_normal((400, n_bits))
    q_hot, db_hot = np.eye(5, dtype=np.int64)[q_y], np.eye(5, dtype=np.int64)[db_y]
    q_codes, db_codes = np.where(q_feat >= 0, 1, -1), np.where(db_feat >= 0, 1, -1)
    emb = {"query_embeddings": q_feat, "db_embeddings": db_feat}
    for k in (100, 400):
        ours = mean_average_precision(
            q_codes, db_codes, q_y, db_y, topk=k, ties="continuous", no_relevant="zero", **emb
        )
        assert ours == pytest.approx(h2q_map_at(q_feat, db_feat, q_hot, db_hot, k), abs=1e-12)
        stable = mean_average_precision(q_codes, db_codes, q_y, db_y, topk=k)
        assert ours != pytest.approx(stable, abs=1e-6)  # the tie rule matters here
    # P@k under the continuous order: relevant items among the first k of the same ranking.
    p = precision_at_k(q_codes, db_codes, q_y, db_y, k=10, ties="continuous", **emb)
    qn = q_feat / np.linalg.norm(q_feat, axis=1, keepdims=True)
    dn = db_feat / np.linalg.norm(db_feat, axis=1, keepdims=True)
    hamm = 0.5 * (n_bits - q_codes @ db_codes.T)
    key = 10 * hamm + ((qn[:, None, :] - dn[None]) ** 2).sum(axis=2)
    top = np.argsort(key, axis=1, kind="stable")[:, :10]
    assert p == pytest.approx(np.mean(db_y[top] == q_y[:, None]), abs=1e-12)
    record = evaluate_retrieval(q_codes, db_codes, q_y, db_y, k=10, ties="continuous", **emb)
    assert record["ties"] == "continuous"
    assert record["precision_at_k"] == pytest.approx(float(p), abs=1e-12)


def test_continuous_ties_need_matching_embeddings():
    codes = np.array([[1, -1], [-1, 1], [1, 1]])
    y = np.array([0, 1, 0])
    with pytest.raises(HashlearnInputError, match="pass query_embeddings"):
        mean_average_precision(codes, codes, y, y, ties="continuous")
    with pytest.raises(HashlearnInputError, match="db_embeddings has 2 rows but there are 3"):
        mean_average_precision(
            codes, codes, y, y, ties="continuous", query_embeddings=codes, db_embeddings=codes[:2]
        )
    with pytest.raises(HashlearnInputError, match='only with ties="continuous"'):
        mean_average_precision(codes, codes, y, y, query_embeddings=codes, db_embeddings=codes)
    with pytest.raises(HashlearnInputError, match="unknown no_relevant 'none'"):
        mean_average_precision(codes, codes, y, y, no_relevant="none")
