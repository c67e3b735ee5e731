"""Full-dimension rotations (n_bits = input dimension) on features with constant columns, as
real embeddings have (dead dimensions), and the deterministic rank-deficient polar factor."""

import numpy as np
import pytest

from hashlearn._linalg import complement_basis, polar
from hashlearn.catalogue import make_method
from hashlearn.index import HammingIndex
from hashlearn.metrics import exact_knn, knn_recall


def test_polar_of_a_rank_deficient_matrix_is_optimal_and_basis_independent():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    M[[1, 4]] = 0.0  # two zero rows, as Vᵀ B has for two zero feature columns
    U = polar(M)
    np.testing.assert_allclose(U.T @ U, np.eye(6), atol=1e-12)
    # Optimal: tr(Uᵀ M) reaches the nuclear norm.
    assert np.trace(U.T @ M) == pytest.approx(np.linalg.svd(M, compute_uv=False).sum())
    # The null-space part depends only on the subspaces, not on the basis LAPACK returns.
    basis = np.linalg.qr(rng.standard_normal((6, 3)))[0]
    turned = basis @ np.linalg.qr(rng.standard_normal((3, 3)))[0]
    np.testing.assert_allclose(complement_basis(basis, 3), complement_basis(turned, 3), atol=1e-9)


def digits_with_dead_columns(digits):
    X = digits.database.X.astype(np.float64)
    constant = np.flatnonzero(np.ptp(X, axis=0) == 0)
    assert len(constant) >= 1  # the digits images have blank corner pixels
    return X, constant


@pytest.mark.parametrize("name", ["itq", "h2q", "random-rotation"])
def test_full_dimension_rotation_with_constant_columns(digits, name):
    X, constant = digits_with_dead_columns(digits)
    models = [make_method(name, n_bits=X.shape[1], random_state=0).fit(X) for _ in range(2)]
    R = models[0].rotation_
    np.testing.assert_allclose(R.T @ R, np.eye(len(R)), atol=1e-8)
    np.testing.assert_array_equal(R, models[1].rotation_)  # deterministic
    if name == "itq":
        curve = np.asarray(models[0].loss_curve_)
        assert (np.diff(curve) <= 1e-9).all() and curve[-1] < curve[0]
    # The codes find exact Euclidean neighbours well above the chance level.
    q = digits.query.X[:100].astype(np.float64)
    index = HammingIndex(X.shape[1])
    index.add(models[0].encode(X))
    found = index.search(models[0].encode(q), 100)[1]
    assert knn_recall(exact_knn(q, X, 10, metric="l2")[1], found) > 0.5


def test_itq_centres_constant_columns_to_exact_zeros(digits):
    # Exact zeros make Vᵀ B exactly rank-deficient, the case polar() fixes deterministically.
    X, constant = digits_with_dead_columns(digits)
    model = make_method("itq", n_bits=X.shape[1], random_state=0).fit(X)
    assert (model._embed(X)[:, constant] == 0).all()
    B = np.sign(model.transform(X))
    # Every bit is used: no bit is constant over the database, dead input columns included.
    assert (np.abs(B.mean(axis=0)) < 1).all()
