"""KSH (Liu et al., CVPR 2012): objective pieces against dense formulas, and retrieval on digits."""

from __future__ import annotations

import numpy as np
import pytest

from hashlearn._labels import check_labels
from hashlearn._validation import HashlearnInputError
from hashlearn.catalogue import make_method
from hashlearn.metrics import mean_average_precision
from hashlearn.shallow import KSH
from hashlearn.shallow.ksh import _descend, _discrete, _Residue, _sigmoid_sign, _smoothed


def dense_similarity(Y):
    return 2.0 * ((Y @ Y.T) > 0) - 1.0


@pytest.mark.parametrize("multilabel", [False, True])
def test_residue_operator_matches_dense(multilabel):
    rng = np.random.default_rng(0)
    n, c, r = 40, 5, 6
    if multilabel:
        Y = (rng.random((n, c)) < 0.4).astype(float)
        Y[np.arange(n), rng.integers(0, c, n)] = 1.0
    else:
        Y = check_labels(rng.integers(0, c, n), n)
    res = _Residue(Y, r)
    res.H = np.where(rng.standard_normal((n, 3)) >= 0, 1.0, -1.0)
    R = r * dense_similarity(Y) - res.H @ res.H.T
    B = rng.standard_normal((n, 4))
    assert np.allclose(res.apply(B), R @ B)
    assert np.allclose(res.apply(B[:, 0]), R @ B[:, 0])


def test_smoothed_objective_and_gradient_match_the_paper_formulas():
    rng = np.random.default_rng(1)
    n, m = 30, 7
    Y = check_labels(rng.integers(0, 3, n), n)
    res = _Residue(Y, 4)
    K = rng.standard_normal((n, m))
    a = rng.standard_normal(m) * 0.3
    R = 4 * dense_similarity(Y)
    b = 2.0 / (1.0 + np.exp(-K @ a)) - 1.0
    f, g = _smoothed(K, res, a)
    assert f == pytest.approx(-b @ R @ b)  # Eq. 10
    steps = 1e-6 * np.eye(m)
    numeric = np.array([_smoothed(K, res, a + e)[0] - _smoothed(K, res, a - e)[0] for e in steps])
    numeric /= 2e-6
    assert np.allclose(g, numeric, rtol=1e-4, atol=1e-6)  # Eq. 11
    assert np.allclose(_sigmoid_sign(np.array([0.0, 60.0, -60.0])), [0.0, 1.0, -1.0])


def test_descent_lowers_the_smoothed_objective():
    rng = np.random.default_rng(2)
    n, m = 60, 10
    Y = check_labels(rng.integers(0, 3, n), n)
    res = _Residue(Y, 8)
    K = rng.standard_normal((n, m))
    a0 = rng.standard_normal(m)
    a, n_iter = _descend(K, res, a0, n_iter=200, tol=0.0)
    assert 1 <= n_iter <= 200
    assert _smoothed(K, res, a)[0] < _smoothed(K, res, a0)[0]
    assert _discrete(K, res, a)[0] <= _discrete(K, res, a0)[0]


def test_objective_is_the_dense_loss_and_decreases_bit_by_bit(digits):
    X, y = digits.train.X[:300], digits.train.y[:300]
    model = KSH(n_bits=12, n_anchors=100, random_state=0, max_iter=80).fit(X, y)
    Y = check_labels(y, len(y))
    H = np.where(model._project(X) >= 0, 1.0, -1.0)
    dense = float(((H @ H.T - 12 * dense_similarity(Y)) ** 2).sum())
    assert model.objective_[-1] == pytest.approx(dense, rel=1e-9)
    obj = np.array(model.objective_)
    assert len(obj) == 12
    # Adding bit h changes the loss by n² − 2 hᵀ R h: the greedy bits lower it from ‖rS‖² (no
    # bits) towards the floor of ten classes (dissimilar pairs cannot all reach −r: ≈ 0.71).
    assert obj[0] < float(((12 * dense_similarity(Y)) ** 2).sum())
    assert obj[-1] < 0.8 * float(((12 * dense_similarity(Y)) ** 2).sum())
    assert obj[-1] < obj[0]


def test_supervised_beats_unsupervised_lsh_on_digits(digits):
    tr, q, db = digits.train, digits.query, digits.database
    scores = {}
    for name, kw in (("ksh", {"n_anchors": 200, "max_iter": 100}), ("lsh", {})):
        model = make_method(name, n_bits=16, random_state=0, **kw).fit(tr.X, tr.y)
        scores[name] = mean_average_precision(model.encode(q.X), model.encode(db.X), q.y, db.y)
    assert scores["ksh"] > scores["lsh"] + 0.3, scores


def test_labelled_subset_is_seeded_and_bounded(digits):
    X, y = digits.train.X, digits.train.y
    a = KSH(n_bits=8, n_anchors=50, n_labeled=120, max_iter=30, random_state=0).fit(X, y)
    b = KSH(n_bits=8, n_anchors=50, n_labeled=120, max_iter=30, random_state=0).fit(X, y)
    assert np.array_equal(a.encode(X), b.encode(X))
    assert a.projection_.shape == (50, 8)
    assert a.encode(X).shape == (len(X), 1)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n_labeled": 1}, "n_labeled"),
        ({"n_labeled": 2.5}, "n_labeled"),
        ({"max_iter": -1}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"ridge": float("nan")}, "ridge"),
        ({"n_anchors": 80, "n_labeled": 50}, "n_labeled=50"),
    ],
)
def test_bad_parameters_raise_clear_errors(digits, kw, message):
    with pytest.raises(HashlearnInputError, match=message):
        KSH(**{"n_bits": 8, "n_anchors": 40, **kw}).fit(digits.train.X, digits.train.y)
